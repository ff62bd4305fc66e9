use keel::container::{self, Context};

use super::args::{Command, Matches, Pos};

pub const CMD: Command = Command {
    name: "start",
    about: "start a created container",
    opts: &[],
    positionals: &[Pos::required("container-id")],
};

pub fn run(ctx: &Context, m: &Matches) -> anyhow::Result<i32> {
    container::start(ctx, super::required(m, 0, "container-id")?)?;
    Ok(0)
}
