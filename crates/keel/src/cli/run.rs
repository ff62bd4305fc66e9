use keel::container::{self, Context, RunOptions};

use super::args::{Command, Matches, Opt, Pos};
use super::create::OPTS as CREATE;

pub const CMD: Command = Command {
    name: "run",
    about: "create and start a container",
    opts: &[
        CREATE[0],
        CREATE[1],
        CREATE[2],
        CREATE[3],
        CREATE[4],
        CREATE[5],
        Opt::switch("detach", Some('d'), "detach from the container's process"),
        Opt::switch("keep", None, "keep the container's state after it exits"),
        Opt::switch("no-subreaper", None, "do not become a subreaper"),
    ],
    positionals: &[Pos::required("container-id")],
};

pub fn run(ctx: &Context, m: &Matches) -> anyhow::Result<i32> {
    let id = super::required(m, 0, "container-id")?;
    let opts = RunOptions {
        create: super::create::options(m)?,
        detach: m.on("detach"),
        keep: m.on("keep"),
        no_subreaper: m.on("no-subreaper"),
    };
    Ok(container::run(ctx, id, &opts)?)
}
