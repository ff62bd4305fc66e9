use keel::container::{self, Context, ListFormat};

use super::args::{Command, Matches, Opt};

pub const CMD: Command = Command {
    name: "list",
    about: "list containers",
    opts: &[
        Opt::value("format", Some('f'), "table or json (default table)"),
        Opt::switch("quiet", Some('q'), "ids only"),
    ],
    positionals: &[],
};

pub fn run(ctx: &Context, m: &Matches) -> anyhow::Result<i32> {
    let json = m.choice("format", &["table", "json"], "table")? == "json";
    let format = match (m.on("quiet"), json) {
        (true, _) => ListFormat::Quiet,
        (_, true) => ListFormat::Json,
        _ => ListFormat::Table,
    };
    container::list(ctx, format, &mut std::io::stdout().lock())?;
    Ok(0)
}
