use std::path::PathBuf;

use keel::container::{self, TemplateOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// bundle directory to write config.json into
    #[arg(short, long)]
    pub bundle: Option<PathBuf>,
    /// a config for an unprivileged user (user namespace, no network ns)
    #[arg(long)]
    pub rootless: bool,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    container::write_template(&TemplateOptions {
        bundle: a.bundle,
        rootless: a.rootless,
    })?;
    Ok(0)
}
