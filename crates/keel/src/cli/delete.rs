use keel::container::{self, Context};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// kill the container first if it still runs
    #[arg(short, long)]
    pub force: bool,
    /// container id
    pub id: String,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<i32> {
    container::delete(ctx, &a.id, a.force)?;
    Ok(0)
}
