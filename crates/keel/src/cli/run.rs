use keel::container::{self, Context, RunOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub create: super::create::Args,
    /// detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// do not become a subreaper
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<i32> {
    let opts = RunOptions {
        create: a.create.options(),
        detach: a.detach,
        keep: a.keep,
        no_subreaper: a.no_subreaper,
    };
    Ok(container::run(ctx, &a.create.id, &opts)?)
}
