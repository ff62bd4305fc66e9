use keel::container::{self, Context};

use super::args::{Command, Matches, Opt, Pos};

pub const CMD: Command = Command {
    name: "ps",
    about: "processes of a container (ps(1) options after the id, default -ef)",
    opts: &[Opt::value(
        "format",
        Some('f'),
        "table or json (default table)",
    )],
    positionals: &[Pos::required("container-id"), Pos::rest("ps-options")],
};

pub fn run(ctx: &Context, m: &Matches) -> anyhow::Result<i32> {
    let json = m.choice("format", &["table", "json"], "table")? == "json";
    let id = super::required(m, 0, "container-id")?;
    container::ps(ctx, id, json, &m.rest(1), &mut std::io::stdout().lock())?;
    Ok(0)
}
