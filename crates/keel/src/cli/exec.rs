use keel::container::{self, Context, ExecOptions};

use super::args::{Command, Matches, Opt, Pos};

pub const CMD: Command = Command {
    name: "exec",
    about: "run a process in a container",
    opts: &[
        Opt::value("process", Some('p'), "process.json to run (`-` for stdin)"),
        Opt::switch("tty", Some('t'), "allocate a pseudo-TTY"),
        Opt::switch("detach", Some('d'), "detach from the process"),
        Opt::value(
            "env",
            Some('e'),
            "environment variable KEY=VALUE (repeatable)",
        ),
        Opt::value("cwd", None, "working directory in the container"),
        Opt::value("user", Some('u'), "uid[:gid]"),
        Opt::value("additional-gids", Some('g'), "additional gid (repeatable)"),
        Opt::value("pid-file", None, "file to write the process pid to"),
        Opt::value(
            "console-socket",
            None,
            "unix socket that receives the pty master",
        ),
        Opt::value("preserve-fds", None, "pass N extra fds (3..3+N)"),
        Opt::value("cap", Some('c'), "add a capability (repeatable)"),
        Opt::switch("no-new-privs", None, "set no_new_privs"),
        Opt::value("apparmor", None, "AppArmor profile"),
        Opt::value("process-label", None, "SELinux process label"),
        Opt::switch(
            "ignore-paused",
            None,
            "accepted for compatibility (ignored)",
        )
        .hidden(),
    ],
    positionals: &[Pos::required("container-id"), Pos::rest("command")],
};

pub fn run(ctx: &Context, m: &Matches) -> anyhow::Result<i32> {
    let id = super::required(m, 0, "container-id")?;
    let opts = ExecOptions {
        process: m.path("process"),
        args: m.rest(1),
        tty: m.on("tty"),
        detach: m.on("detach"),
        env: m.all("env"),
        cwd: m.path("cwd"),
        user: m.last("user").map(str::to_string),
        additional_gids: m.all_parsed("additional-gids")?,
        pid_file: m.path("pid-file"),
        console_socket: m.path("console-socket"),
        preserve_fds: m.parsed("preserve-fds")?.unwrap_or(0),
        caps: m.all("cap"),
        no_new_privs: m.on("no-new-privs"),
        apparmor: m.last("apparmor").map(str::to_string),
        process_label: m.last("process-label").map(str::to_string),
    };
    Ok(container::exec(ctx, id, &opts)?)
}
