use keel::container::{self, Context};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// print stats once and exit
    #[arg(long)]
    pub stats: bool,
    /// time between stats (Go duration: 5s, 500ms)
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// container id
    pub id: String,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<i32> {
    let interval = container::parse_duration(&a.interval)
        .ok_or_else(|| anyhow::anyhow!("invalid --interval {:?}", a.interval))?;
    container::events(ctx, &a.id, a.stats, interval, &mut std::io::stdout().lock())?;
    Ok(0)
}
