use keel::container::{self, Context};

use super::args::{Command, Matches, Pos};

pub const PAUSE: Command = Command {
    name: "pause",
    about: "freeze every process of a container",
    opts: &[],
    positionals: &[Pos::required("container-id")],
};

pub const RESUME: Command = Command {
    name: "resume",
    about: "thaw a paused container",
    opts: &[],
    positionals: &[Pos::required("container-id")],
};

pub fn pause(ctx: &Context, m: &Matches) -> anyhow::Result<i32> {
    container::pause(ctx, super::required(m, 0, "container-id")?)?;
    Ok(0)
}

pub fn resume(ctx: &Context, m: &Matches) -> anyhow::Result<i32> {
    container::resume(ctx, super::required(m, 0, "container-id")?)?;
    Ok(0)
}
