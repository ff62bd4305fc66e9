//! runc's command line, flag for flag. One file per verb: each only parses
//! and calls the library.

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

use clap::{Parser, Subcommand, ValueEnum};
use keel::container::Context;

/// keel: an OCI runtime (runc's command line).
#[derive(Debug, Parser)]
#[command(name = "keel", version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: ", "1.2.1"), disable_help_subcommand = true)]
pub struct Cli {
    /// root directory for container state
    #[arg(long, global = true, default_value = "/run/keel")]
    pub root: PathBuf,
    /// log file (default: stderr only)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// log format
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// debug logging
    #[arg(long, global = true)]
    pub debug: bool,
    /// accepted for compatibility; the cgroupfs manager is used
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// accepted for compatibility (ignored)
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// accepted for compatibility (true|false|auto, ignored)
    #[arg(long = "rootless", id = "global_rootless", hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// create a container (it waits for `start`)
    Create(create::Args),
    /// start a created container
    Start(start::Args),
    /// create and start a container
    Run(run::Args),
    /// print a container's state JSON
    State(state::Args),
    /// list containers
    List(list::Args),
    /// send a signal to a container
    Kill(kill::Args),
    /// delete a container
    Delete(delete::Args),
    /// run a process in a container
    Exec(exec::Args),
    /// freeze every process of a container
    Pause(pause::Args),
    /// thaw a paused container
    Resume(pause::Args),
    /// processes of a container
    Ps(ps::Args),
    /// container statistics and events
    Events(events::Args),
    /// change a container's resources
    Update(update::Args),
    /// write a template config.json
    Spec(spec::Args),
    /// the OCI features JSON
    Features,
}

impl Cli {
    /// Run the command; the exit code on success.
    pub fn dispatch(self) -> anyhow::Result<i32> {
        let ctx = Context::new(self.root, self.systemd_cgroup);
        match self.command {
            Command::Create(a) => create::run(&ctx, a),
            Command::Start(a) => start::run(&ctx, a),
            Command::Run(a) => run::run(&ctx, a),
            Command::State(a) => state::run(&ctx, a),
            Command::List(a) => list::run(&ctx, a),
            Command::Kill(a) => kill::run(&ctx, a),
            Command::Delete(a) => delete::run(&ctx, a),
            Command::Exec(a) => exec::run(&ctx, a),
            Command::Pause(a) => pause::pause(&ctx, a),
            Command::Resume(a) => pause::resume(&ctx, a),
            Command::Ps(a) => ps::run(&ctx, a),
            Command::Events(a) => events::run(&ctx, a),
            Command::Update(a) => update::run(&ctx, a),
            Command::Spec(a) => spec::run(a),
            Command::Features => features::run(),
        }
    }
}
