use std::io::Write;

use keel::container::{self, Context};

use super::args::{Command, Matches, Pos};

pub const CMD: Command = Command {
    name: "state",
    about: "print a container's state JSON",
    opts: &[],
    positionals: &[Pos::required("container-id")],
};

pub fn run(ctx: &Context, m: &Matches) -> anyhow::Result<i32> {
    let text = container::state(ctx, super::required(m, 0, "container-id")?)?;
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(0)
}
