//! The `keel` binary: parse runc's command line, run the command, print a
//! one-line error (and log it to `--log`) on failure.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    if let Some(path) = &args.log {
        let format = match args.log_format {
            cli::LogFormat::Json => keel::log::Format::Json,
            cli::LogFormat::Text => keel::log::Format::Text,
        };
        if let Err(e) = keel::log::init(path, format, args.debug) {
            eprintln!("keel: cannot open log file {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    let code = match args.dispatch() {
        Ok(code) => code,
        Err(e) => {
            let msg = one_line(&e);
            keel::log::error(&msg);
            eprintln!("keel: {msg}");
            1
        }
    };
    std::process::exit(code);
}

/// The error and its causes, joined on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !s.is_empty() && !parts.last().is_some_and(|p| p.ends_with(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}
