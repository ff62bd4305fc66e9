//! keel's own command-line parser, with runc's conventions.
//!
//! Why not clap (the project's CLI library): keel runs for a few milliseconds
//! and every command starts by building clap's description of *all* of its
//! commands; that code is ~250 KiB of the binary and showed up as a quarter
//! of keel's resident memory (docs/performance.md). keel's grammar is small
//! and fixed, so a table per command and this parser do the job.
//!
//! Accepted forms, as runc (urfave/cli) and clap accept them: `--name value`,
//! `--name=value`, `-name value` (single-dash long names), `-n value`, `-nvalue`,
//! `-n=value`, clustered short switches (`-dt`), `--` to end the options.
//! Global options may come before or after the command. A command's last
//! positional may take "the rest" (`exec ID CMD ARGS...`): from there on,
//! nothing is read as an option.

use std::path::PathBuf;
use std::str::FromStr;

/// How an option takes its value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// a switch: `--detach`
    Nothing,
    /// `--bundle DIR` or `--bundle=DIR`
    Value,
    /// `--rootless` or `--rootless=false`: a value only after `=`
    Optional,
}

#[derive(Clone, Copy)]
pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    pub takes: Takes,
    pub help: &'static str,
    /// other long names accepted
    pub aliases: &'static [&'static str],
    /// accepted but not listed in --help
    pub hidden: bool,
}

impl Opt {
    pub const fn switch(long: &'static str, short: Option<char>, help: &'static str) -> Opt {
        Opt {
            long,
            short,
            takes: Takes::Nothing,
            help,
            aliases: &[],
            hidden: false,
        }
    }

    pub const fn value(long: &'static str, short: Option<char>, help: &'static str) -> Opt {
        Opt {
            long,
            short,
            takes: Takes::Value,
            help,
            aliases: &[],
            hidden: false,
        }
    }

    pub const fn hidden(self) -> Opt {
        Opt {
            hidden: true,
            ..self
        }
    }

    pub const fn optional(self) -> Opt {
        Opt {
            takes: Takes::Optional,
            ..self
        }
    }

    pub const fn aliases(self, aliases: &'static [&'static str]) -> Opt {
        Opt { aliases, ..self }
    }

    fn named(&self, name: &str) -> bool {
        self.long == name || self.aliases.contains(&name)
    }
}

/// A positional argument.
pub struct Pos {
    pub name: &'static str,
    pub required: bool,
    /// takes every remaining word, options included
    pub rest: bool,
}

impl Pos {
    pub const fn required(name: &'static str) -> Pos {
        Pos {
            name,
            required: true,
            rest: false,
        }
    }
    pub const fn optional(name: &'static str) -> Pos {
        Pos {
            name,
            required: false,
            rest: false,
        }
    }
    pub const fn rest(name: &'static str) -> Pos {
        Pos {
            name,
            required: false,
            rest: true,
        }
    }
}

/// One command's grammar.
pub struct Command {
    pub name: &'static str,
    pub about: &'static str,
    pub opts: &'static [Opt],
    pub positionals: &'static [Pos],
}

/// A usage error: printed with a hint to `--help`, exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// What was given for one command (or for the global options).
#[derive(Default, Debug)]
pub struct Matches {
    /// (long name, value) in command-line order; switches have "true"
    given: Vec<(&'static str, String)>,
    /// positionals, then the rest
    positionals: Vec<String>,
}

impl Matches {
    fn set(&mut self, name: &'static str, value: String) {
        self.given.push((name, value));
    }

    /// A switch: given (and not `=false`).
    pub fn on(&self, long: &str) -> bool {
        self.last(long).is_some_and(|v| v != "false")
    }

    /// The last value given for an option.
    pub fn last(&self, long: &str) -> Option<&str> {
        self.given
            .iter()
            .rev()
            .find(|(n, _)| *n == long)
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self, long: &str) -> Option<PathBuf> {
        self.last(long).map(PathBuf::from)
    }

    /// Every value given for a repeatable option, in order.
    pub fn all(&self, long: &str) -> Vec<String> {
        self.given
            .iter()
            .filter(|(n, _)| *n == long)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The last value, parsed.
    pub fn parsed<T: FromStr>(&self, long: &str) -> Result<Option<T>, UsageError>
    where
        T::Err: std::fmt::Display,
    {
        self.last(long).map(|v| parse_value(long, v)).transpose()
    }

    /// Every value, parsed.
    pub fn all_parsed<T: FromStr>(&self, long: &str) -> Result<Vec<T>, UsageError>
    where
        T::Err: std::fmt::Display,
    {
        self.given
            .iter()
            .filter(|(n, _)| *n == long)
            .map(|(_, v)| parse_value(long, v))
            .collect()
    }

    /// The last value, which must be one of `choices` (`default` if absent).
    pub fn choice(
        &self,
        long: &str,
        choices: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str, UsageError> {
        let Some(v) = self.last(long) else {
            return Ok(default);
        };
        choices.iter().find(|c| **c == v).copied().ok_or_else(|| {
            UsageError(format!(
                "invalid value {v:?} for --{long}: expected {}",
                choices.join(" or ")
            ))
        })
    }

    /// Positional `i` (0-based); required ones are checked while parsing.
    pub fn positional(&self, i: usize) -> Option<&str> {
        self.positionals.get(i).map(String::as_str)
    }

    /// Positionals from `i` on.
    pub fn rest(&self, i: usize) -> Vec<String> {
        self.positionals
            .get(i..)
            .map(<[String]>::to_vec)
            .unwrap_or_default()
    }
}

fn parse_value<T: FromStr>(long: &str, v: &str) -> Result<T, UsageError>
where
    T::Err: std::fmt::Display,
{
    v.parse()
        .map_err(|e| UsageError(format!("invalid value {v:?} for --{long}: {e}")))
}

/// The outcome of parsing the whole command line.
pub enum Parsed {
    Run {
        global: Matches,
        command: &'static Command,
        matches: Matches,
    },
    /// --help: the text to print
    Help(String),
    Version,
}

/// Parse `args` (without the program name).
pub fn parse(
    args: &[String],
    global: &'static [Opt],
    commands: &'static [Command],
    about: &str,
) -> Result<Parsed, UsageError> {
    let mut globals = Matches::default();
    let mut i = 0;
    // Global options, up to the command's name.
    let command = loop {
        let Some(arg) = args.get(i) else {
            return Err(UsageError("no command given (see keel --help)".into()));
        };
        i += 1;
        match arg.as_str() {
            "-h" | "--help" | "help" => return Ok(Parsed::Help(top_help(about, global, commands))),
            "-v" | "-V" | "--version" => return Ok(Parsed::Version),
            _ => {}
        }
        if arg.starts_with('-') && arg.len() > 1 {
            i = take_option(args, i - 1, global, &mut globals)?
                .ok_or_else(|| UsageError(format!("unknown global option {arg}")))?;
            continue;
        }
        break commands
            .iter()
            .find(|c| c.name == arg)
            .ok_or_else(|| UsageError(format!("unknown command {arg:?} (see keel --help)")))?;
    };

    let mut matches = Matches::default();
    let mut options_done = false;
    while let Some(arg) = args.get(i) {
        // Once the positionals reach a "rest" one, nothing is an option.
        let in_rest = command
            .positionals
            .iter()
            .position(|p| p.rest)
            .is_some_and(|at| at > 0 && matches.positionals.len() >= at);
        if !options_done && !in_rest && arg.starts_with('-') && arg.len() > 1 {
            if arg == "--" {
                options_done = true;
                i += 1;
                continue;
            }
            if arg == "-h" || arg == "--help" {
                return Ok(Parsed::Help(command_help(command, global)));
            }
            if let Some(next) = take_option(args, i, command.opts, &mut matches)? {
                i = next;
                continue;
            }
            if let Some(next) = take_option(args, i, global, &mut globals)? {
                i = next;
                continue;
            }
            return Err(UsageError(format!(
                "unknown option {arg} for {} (see keel {} --help)",
                command.name, command.name
            )));
        }
        let slots = command.positionals.len();
        let takes_rest = command.positionals.last().is_some_and(|p| p.rest);
        if matches.positionals.len() >= slots && !takes_rest {
            return Err(UsageError(format!(
                "unexpected argument {arg:?} for {} (see keel {} --help)",
                command.name, command.name
            )));
        }
        matches.positionals.push(arg.clone());
        i += 1;
    }
    for (n, p) in command.positionals.iter().enumerate() {
        if p.required && matches.positionals.len() <= n {
            return Err(UsageError(format!(
                "{} needs <{}> (see keel {} --help)",
                command.name, p.name, command.name
            )));
        }
    }
    Ok(Parsed::Run {
        global: globals,
        command,
        matches,
    })
}

/// Read the option at `args[i]` if it is one of `opts`: the index after it
/// (and its value), or None when `opts` has no such option.
fn take_option(
    args: &[String],
    i: usize,
    opts: &'static [Opt],
    m: &mut Matches,
) -> Result<Option<usize>, UsageError> {
    let arg = &args[i];
    let body = arg.strip_prefix("--").unwrap_or(&arg[1..]);
    let (name, inline) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (body, None),
    };
    // Long name (`--name` or runc's `-name`).
    if let Some(opt) = opts.iter().find(|o| o.named(name)) {
        return take_value(args, i, opt, inline, m).map(Some);
    }
    if arg.starts_with("--") {
        return Ok(None);
    }
    // Short options, possibly clustered: `-d`, `-dt`, `-bdir`, `-b=dir`.
    let shorts = &arg[1..];
    let mut found = Vec::new();
    for (at, c) in shorts.char_indices() {
        let Some(opt) = opts.iter().find(|o| o.short == Some(c)) else {
            if found.is_empty() {
                return Ok(None);
            }
            return Err(UsageError(format!("unknown option -{c} in {arg}")));
        };
        if opt.takes == Takes::Value {
            let after = &shorts[at + c.len_utf8()..];
            let after = after.strip_prefix('=').unwrap_or(after);
            for (o, v) in found.drain(..) {
                m.set(o, v);
            }
            if after.is_empty() {
                return take_value(args, i, opt, None, m).map(Some);
            }
            m.set(opt.long, after.to_string());
            return Ok(Some(i + 1));
        }
        found.push((opt.long, "true".to_string()));
    }
    for (o, v) in found {
        m.set(o, v);
    }
    Ok(Some(i + 1))
}

fn take_value(
    args: &[String],
    i: usize,
    opt: &Opt,
    inline: Option<&str>,
    m: &mut Matches,
) -> Result<usize, UsageError> {
    match (opt.takes, inline) {
        (Takes::Nothing, None) | (Takes::Optional, None) => {
            m.set(opt.long, "true".into());
            Ok(i + 1)
        }
        (Takes::Nothing, Some(v)) | (Takes::Optional, Some(v)) => match v {
            "true" | "false" => {
                m.set(opt.long, v.into());
                Ok(i + 1)
            }
            _ if opt.takes == Takes::Optional => {
                m.set(opt.long, v.into());
                Ok(i + 1)
            }
            _ => Err(UsageError(format!(
                "--{} is a switch: {v:?} is not true or false",
                opt.long
            ))),
        },
        (Takes::Value, Some(v)) => {
            m.set(opt.long, v.into());
            Ok(i + 1)
        }
        (Takes::Value, None) => {
            let v = args
                .get(i + 1)
                .ok_or_else(|| UsageError(format!("--{} needs a value", opt.long)))?;
            m.set(opt.long, v.clone());
            Ok(i + 2)
        }
    }
}

fn option_lines(out: &mut String, opts: &[Opt]) {
    for o in opts.iter().filter(|o| !o.hidden) {
        let mut left = match o.short {
            Some(c) => format!("  -{c}, --{}", o.long),
            None => format!("      --{}", o.long),
        };
        if o.takes == Takes::Value {
            left.push_str(" VALUE");
        }
        out.push_str(&format!("{left:<32} {}\n", o.help));
    }
}

fn top_help(about: &str, global: &[Opt], commands: &[Command]) -> String {
    let mut out = format!(
        "{about}\n\nusage: keel [global options] <command> [options] [arguments]\n\ncommands:\n"
    );
    for c in commands {
        out.push_str(&format!("  {:<12} {}\n", c.name, c.about));
    }
    out.push_str("\nglobal options:\n");
    option_lines(&mut out, global);
    out.push_str(&format!(
        "{:<32} {}\n",
        "  -h, --help", "print help (also after a command)"
    ));
    out.push_str(&format!(
        "{:<32} {}\n",
        "  -v, --version", "print the version"
    ));
    out
}

fn command_help(c: &Command, global: &[Opt]) -> String {
    let mut usage = format!("usage: keel [global options] {} [options]", c.name);
    for p in c.positionals {
        usage.push_str(&match (p.required, p.rest) {
            (_, true) => format!(" [{}...]", p.name),
            (true, false) => format!(" <{}>", p.name),
            (false, false) => format!(" [{}]", p.name),
        });
    }
    let mut out = format!("keel {}: {}\n\n{usage}\n", c.name, c.about);
    if c.opts.iter().any(|o| !o.hidden) {
        out.push_str("\noptions:\n");
        option_lines(&mut out, c.opts);
    }
    out.push_str("\nglobal options:\n");
    option_lines(&mut out, global);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    static GLOBAL: &[Opt] = &[
        Opt::value("root", None, "state dir"),
        Opt::switch("debug", None, "debug"),
        Opt::switch("rootless", None, "compat").optional().hidden(),
    ];
    static COMMANDS: &[Command] = &[
        Command {
            name: "exec",
            about: "exec",
            opts: &[
                Opt::switch("tty", Some('t'), "tty"),
                Opt::switch("detach", Some('d'), "detach"),
                Opt::value("env", Some('e'), "env"),
                Opt::value("cpu-share", None, "shares").aliases(&["cpu-shares"]),
            ],
            positionals: &[Pos::required("id"), Pos::rest("command")],
        },
        Command {
            name: "kill",
            about: "kill",
            opts: &[Opt::switch("all", Some('a'), "all")],
            positionals: &[Pos::required("id"), Pos::optional("signal")],
        },
    ];

    fn run(words: &[&str]) -> Result<(Matches, &'static str, Matches), UsageError> {
        let args: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        match parse(&args, GLOBAL, COMMANDS, "about")? {
            Parsed::Run {
                global,
                command,
                matches,
            } => Ok((global, command.name, matches)),
            Parsed::Help(_) => Err(UsageError("help".into())),
            Parsed::Version => Err(UsageError("version".into())),
        }
    }

    #[test]
    fn runc_forms() -> Result<(), UsageError> {
        let (g, name, m) = run(&[
            "--root",
            "/r",
            "exec",
            "-dt",
            "-e",
            "A=1",
            "--env=B=2",
            "-eC=3",
            "-cpu-shares",
            "5",
            "id",
            "sh",
            "-c",
            "--tty",
        ])?;
        assert_eq!(g.last("root"), Some("/r"));
        assert_eq!(name, "exec");
        assert!(m.on("tty") && m.on("detach"));
        assert_eq!(m.all("env"), ["A=1", "B=2", "C=3"]);
        assert_eq!(m.parsed::<u64>("cpu-share")?, Some(5));
        assert_eq!(m.positional(0), Some("id"));
        assert_eq!(m.rest(1), ["sh", "-c", "--tty"]);
        Ok(())
    }

    #[test]
    fn globals_after_the_command_and_optional_values() -> Result<(), UsageError> {
        let (g, _, m) = run(&["kill", "--debug", "id", "--rootless=false", "-a", "KILL"])?;
        assert!(g.on("debug"));
        assert!(!g.on("rootless"));
        assert!(m.on("all"));
        assert_eq!(m.rest(0), ["id", "KILL"]);
        Ok(())
    }

    #[test]
    fn errors_name_the_problem() {
        let err = |w: &[&str]| run(w).err().map(|e| e.0).unwrap_or_default();
        assert!(err(&["kill"]).contains("needs <id>"));
        assert!(err(&["kill", "a", "b", "c"]).contains("unexpected argument \"c\""));
        assert!(err(&["kill", "--bogus", "a"]).contains("unknown option --bogus"));
        assert!(err(&["frob"]).contains("unknown command \"frob\""));
        assert!(err(&["--root"]).contains("--root needs a value"));
        assert!(err(&["exec", "--tty=maybe", "id"]).contains("is a switch"));
        assert!(err(&[]).contains("no command"));
    }

    #[test]
    fn dash_dash_ends_options() -> Result<(), UsageError> {
        let (_, _, m) = run(&["kill", "--", "-a", "9"])?;
        assert!(!m.on("all"));
        assert_eq!(m.rest(0), ["-a", "9"]);
        Ok(())
    }

    #[test]
    fn help_and_version() {
        let args = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(matches!(
            parse(&args(&["exec", "--help"]), GLOBAL, COMMANDS, "a"),
            Ok(Parsed::Help(h)) if h.contains("--tty") && h.contains("<id>")
        ));
        assert!(matches!(
            parse(&args(&["--version"]), GLOBAL, COMMANDS, "a"),
            Ok(Parsed::Version)
        ));
    }
}
