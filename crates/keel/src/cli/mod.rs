//! runc's command line, flag for flag. One file per verb: each declares its
//! grammar (`CMD`) and turns what was given into a library call; `args`
//! parses.

mod args;
mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;

use std::path::PathBuf;

pub use args::UsageError;
use args::{Command, Matches, Opt, Parsed};
use keel::container::Context;

const ABOUT: &str = "keel: an OCI runtime (runc's command line)";

/// The version text, runc's layout.
pub const VERSION: &str = concat!("keel version ", env!("CARGO_PKG_VERSION"), "\nspec: 1.2.1");

static GLOBAL: &[Opt] = &[
    Opt::value(
        "root",
        None,
        "root directory for container state (default /run/keel)",
    ),
    Opt::value("log", None, "log file (default: stderr only)"),
    Opt::value(
        "log-format",
        None,
        "log format: text or json (default text)",
    ),
    Opt::switch("debug", None, "debug logging"),
    Opt::switch(
        "systemd-cgroup",
        None,
        "accepted for compatibility; the cgroupfs manager is used",
    ),
    Opt::value("criu", None, "accepted for compatibility (ignored)").hidden(),
    Opt::switch("rootless", None, "accepted for compatibility (ignored)")
        .optional()
        .hidden(),
];

static COMMANDS: &[Command] = &[
    create::CMD,
    start::CMD,
    run::CMD,
    state::CMD,
    list::CMD,
    kill::CMD,
    delete::CMD,
    exec::CMD,
    pause::PAUSE,
    pause::RESUME,
    ps::CMD,
    events::CMD,
    update::CMD,
    spec::CMD,
    features::CMD,
];

/// The global options.
pub struct Global {
    pub root: PathBuf,
    pub log: Option<PathBuf>,
    pub log_json: bool,
    pub debug: bool,
    pub systemd_cgroup: bool,
}

/// What the command line asks for.
pub enum Invocation {
    Command {
        global: Global,
        name: &'static str,
        matches: Matches,
    },
    /// print this and exit 0
    Print(String),
}

/// Parse the command line (without the program name).
pub fn parse(args: &[String]) -> Result<Invocation, UsageError> {
    match args::parse(args, GLOBAL, COMMANDS, ABOUT)? {
        Parsed::Help(text) => Ok(Invocation::Print(text)),
        Parsed::Version => Ok(Invocation::Print(VERSION.to_string())),
        Parsed::Run {
            global,
            command,
            matches,
        } => Ok(Invocation::Command {
            global: Global {
                root: global.path("root").unwrap_or_else(|| "/run/keel".into()),
                log: global.path("log"),
                log_json: global.choice("log-format", &["text", "json"], "text")? == "json",
                debug: global.on("debug"),
                systemd_cgroup: global.on("systemd-cgroup"),
            },
            name: command.name,
            matches,
        }),
    }
}

/// Run the command; the exit code on success.
pub fn dispatch(global: &Global, name: &str, m: &Matches) -> anyhow::Result<i32> {
    let ctx = Context::new(global.root.clone(), global.systemd_cgroup);
    match name {
        "create" => create::run(&ctx, m),
        "start" => start::run(&ctx, m),
        "run" => run::run(&ctx, m),
        "state" => state::run(&ctx, m),
        "list" => list::run(&ctx, m),
        "kill" => kill::run(&ctx, m),
        "delete" => delete::run(&ctx, m),
        "exec" => exec::run(&ctx, m),
        "pause" => pause::pause(&ctx, m),
        "resume" => pause::resume(&ctx, m),
        "ps" => ps::run(&ctx, m),
        "events" => events::run(&ctx, m),
        "update" => update::run(&ctx, m),
        "spec" => spec::run(m),
        "features" => features::run(),
        other => Err(UsageError(format!("unknown command {other:?}")).into()),
    }
}

/// Positional `i`, which the grammar marks required (so present).
fn required<'m>(m: &'m Matches, i: usize, name: &str) -> Result<&'m str, UsageError> {
    m.positional(i)
        .ok_or_else(|| UsageError(format!("missing <{name}>")))
}
