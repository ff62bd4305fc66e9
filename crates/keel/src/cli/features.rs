use std::io::Write;

use super::args::Command;

pub const CMD: Command = Command {
    name: "features",
    about: "the OCI features JSON",
    opts: &[],
    positionals: &[],
};

pub fn run() -> anyhow::Result<i32> {
    let v = keel::container::features();
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(&v)?
    )?;
    Ok(0)
}
