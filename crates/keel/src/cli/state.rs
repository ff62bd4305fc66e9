use std::io::Write;

use keel::container::{self, Context};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// container id
    pub id: String,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<i32> {
    let text = container::state(ctx, &a.id)?;
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(0)
}
