use keel::container::{self, Context};

use super::args::{Command, Matches, Opt, Pos};

pub const CMD: Command = Command {
    name: "kill",
    about: "send a signal (name or number, default SIGTERM) to a container",
    opts: &[Opt::switch(
        "all",
        Some('a'),
        "signal every process of the container",
    )],
    positionals: &[Pos::required("container-id"), Pos::optional("signal")],
};

pub fn run(ctx: &Context, m: &Matches) -> anyhow::Result<i32> {
    let id = super::required(m, 0, "container-id")?;
    let sig = container::parse_signal(m.positional(1).unwrap_or("SIGTERM"))?;
    container::kill(ctx, id, sig, m.on("all"))?;
    Ok(0)
}
