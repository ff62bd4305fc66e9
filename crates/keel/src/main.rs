//! The `keel` binary: parse runc's command line, run the command, print a
//! one-line error (and log it to `--log`) on failure.

mod cli;

use std::io::Write;

fn main() {
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not valid UTF-8"))
        })
        .collect()
    {
        Ok(args) => args,
        Err(e) => usage_error(&e),
    };
    let (global, name, matches) = match cli::parse(&args) {
        Ok(cli::Invocation::Command {
            global,
            name,
            matches,
        }) => (global, name, matches),
        Ok(cli::Invocation::Print(text)) => {
            let _ = writeln!(std::io::stdout().lock(), "{}", text.trim_end());
            std::process::exit(0);
        }
        Err(e) => usage_error(&e.to_string()),
    };
    if let Some(path) = &global.log {
        let format = if global.log_json {
            keel::log::Format::Json
        } else {
            keel::log::Format::Text
        };
        if let Err(e) = keel::log::init(path, format, global.debug) {
            eprintln!("keel: cannot open log file {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    let code = match cli::dispatch(&global, name, &matches) {
        Ok(code) => code,
        Err(e) => {
            let msg = one_line(&e);
            keel::log::error(&msg);
            eprintln!("keel: {msg}");
            if e.downcast_ref::<cli::UsageError>().is_some() {
                2
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}

/// A command line keel cannot read: one line on stderr, exit status 2.
fn usage_error(msg: &str) -> ! {
    eprintln!("keel: {msg}");
    std::process::exit(2);
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
