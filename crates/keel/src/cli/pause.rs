use keel::container::{self, Context};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// container id
    pub id: String,
}

pub fn pause(ctx: &Context, a: Args) -> anyhow::Result<i32> {
    container::pause(ctx, &a.id)?;
    Ok(0)
}

pub fn resume(ctx: &Context, a: Args) -> anyhow::Result<i32> {
    container::resume(ctx, &a.id)?;
    Ok(0)
}
