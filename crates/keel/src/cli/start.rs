use keel::container::{self, Context};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// container id
    pub id: String,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<i32> {
    container::start(ctx, &a.id)?;
    Ok(0)
}
