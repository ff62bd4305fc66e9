use keel::container::{self, Context, CreateOptions};

use super::args::{Command, Matches, Opt, Pos, UsageError};

/// create's options; `run` takes them too.
pub const OPTS: [Opt; 6] = [
    Opt::value(
        "bundle",
        Some('b'),
        "path to the bundle directory (default .)",
    ),
    Opt::value(
        "console-socket",
        None,
        "unix socket that receives the pty master",
    ),
    Opt::value("pid-file", None, "file to write the init pid to"),
    Opt::switch("no-pivot", None, "MS_MOVE + chroot instead of pivot_root"),
    Opt::switch("no-new-keyring", None, "keep the caller's session keyring"),
    Opt::value(
        "preserve-fds",
        None,
        "pass N extra fds (3..3+N) to the container",
    ),
];

pub const CMD: Command = Command {
    name: "create",
    about: "create a container (it waits for `start`)",
    opts: &OPTS,
    positionals: &[Pos::required("container-id")],
};

pub fn options(m: &Matches) -> Result<CreateOptions, UsageError> {
    Ok(CreateOptions {
        bundle: m.path("bundle").unwrap_or_else(|| ".".into()),
        pid_file: m.path("pid-file"),
        console_socket: m.path("console-socket"),
        no_pivot: m.on("no-pivot"),
        no_new_keyring: m.on("no-new-keyring"),
        preserve_fds: m.parsed("preserve-fds")?.unwrap_or(0),
    })
}

pub fn run(ctx: &Context, m: &Matches) -> anyhow::Result<i32> {
    let id = super::required(m, 0, "container-id")?;
    container::create(ctx, id, &options(m)?)?;
    Ok(0)
}
