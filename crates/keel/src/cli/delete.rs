use keel::container::{self, Context};

use super::args::{Command, Matches, Opt, Pos};

pub const CMD: Command = Command {
    name: "delete",
    about: "delete a container",
    opts: &[Opt::switch(
        "force",
        Some('f'),
        "kill the container first if it still runs",
    )],
    positionals: &[Pos::required("container-id")],
};

pub fn run(ctx: &Context, m: &Matches) -> anyhow::Result<i32> {
    container::delete(ctx, super::required(m, 0, "container-id")?, m.on("force"))?;
    Ok(0)
}
