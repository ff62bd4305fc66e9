use keel::container::{self, Context};

use super::args::{Command, Matches, Opt, Pos};

pub const CMD: Command = Command {
    name: "events",
    about: "container statistics and events",
    opts: &[
        Opt::switch("stats", None, "print stats once and exit"),
        Opt::value(
            "interval",
            None,
            "time between stats (Go duration: 5s, 500ms; default 5s)",
        ),
    ],
    positionals: &[Pos::required("container-id")],
};

pub fn run(ctx: &Context, m: &Matches) -> anyhow::Result<i32> {
    let text = m.last("interval").unwrap_or("5s");
    let interval = container::parse_duration(text)
        .ok_or_else(|| anyhow::anyhow!("invalid --interval {text:?}"))?;
    let id = super::required(m, 0, "container-id")?;
    container::events(
        ctx,
        id,
        m.on("stats"),
        interval,
        &mut std::io::stdout().lock(),
    )?;
    Ok(0)
}
