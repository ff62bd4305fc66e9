//! `berth`: the command line. Until berthd exists the image commands run
//! the berth-image library in this process, against `--data-root`.

mod cli;
mod commands;
mod config;
mod format;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, ImageCommand};
use commands::{bundle, images, inspect, login, pull, rmi, tag, transfer};
use config::Settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.debug);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("berth: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(debug: bool) {
    let filter = if debug { "debug" } else { "warn" };
    let env_filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::new(cli.data_root, &cli.config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Unbundle(args) => bundle::unbundle(&args),
        Command::Login(args) => runtime.block_on(login::login(&settings, &args)),
        Command::Logout(args) => login::logout(&settings, &args),
        command => {
            let store = settings.open_store()?;
            runtime.block_on(image_command(&store, command))
        }
    }
}

async fn image_command(store: &berth_image::ImageStore, command: Command) -> anyhow::Result<()> {
    let image = match command {
        Command::Pull(a) => ImageCommand::Pull(a),
        Command::Push(a) => ImageCommand::Push(a),
        Command::Images(a) => ImageCommand::Ls(a),
        Command::Rmi(a) => ImageCommand::Rm(a),
        Command::Tag(a) => ImageCommand::Tag(a),
        Command::Save(a) => ImageCommand::Save(a),
        Command::Load(a) => ImageCommand::Load(a),
        Command::Import(a) => ImageCommand::Import(a),
        Command::Image(image) => image,
        Command::Bundle(a) => return bundle::bundle(store, &a),
        Command::Unbundle(_) | Command::Login(_) | Command::Logout(_) => {
            unreachable!("handled before the store is opened")
        }
    };
    match image {
        ImageCommand::Ls(a) => images::run(store, &a),
        ImageCommand::Rm(a) => rmi::rmi(store, &a),
        ImageCommand::Pull(a) => pull::run(store, &a).await,
        ImageCommand::Push(a) => transfer::push(store, &a).await,
        ImageCommand::Save(a) => transfer::save(store, &a),
        ImageCommand::Load(a) => transfer::load(store, &a),
        ImageCommand::Import(a) => transfer::import(store, &a),
        ImageCommand::Prune(a) => rmi::prune(store, &a),
        ImageCommand::Tag(a) => tag::run(store, &a),
        ImageCommand::Inspect(a) => inspect::run(store, &a),
    }
}
