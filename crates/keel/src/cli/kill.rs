use keel::container::{self, Context};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// signal every process of the container
    #[arg(short, long)]
    pub all: bool,
    /// container id
    pub id: String,
    /// signal name or number (default SIGTERM)
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<i32> {
    let sig = container::parse_signal(&a.signal)?;
    container::kill(ctx, &a.id, sig, a.all)?;
    Ok(0)
}
