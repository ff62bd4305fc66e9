use std::path::PathBuf;

use keel::container::{self, Context, ExecOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// process.json to run (`-` for stdin)
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// detach from the process
    #[arg(short, long)]
    pub detach: bool,
    /// environment variable KEY=VALUE (repeatable)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// uid[:gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// additional gids (repeatable)
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// file to write the process pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// unix socket that receives the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// pass N extra fds (3..3+N)
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// add a capability (repeatable)
    #[arg(short, long = "cap")]
    pub cap: Vec<String>,
    /// set no_new_privs
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux process label
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// accepted for compatibility (ignored)
    #[arg(long = "ignore-paused", hide = true)]
    pub ignore_paused: bool,
    /// container id
    pub id: String,
    /// command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<i32> {
    let opts = ExecOptions {
        process: a.process,
        args: a.args,
        tty: a.tty,
        detach: a.detach,
        env: a.env,
        cwd: a.cwd,
        user: a.user,
        additional_gids: a.additional_gids,
        pid_file: a.pid_file,
        console_socket: a.console_socket,
        preserve_fds: a.preserve_fds,
        caps: a.cap,
        no_new_privs: a.no_new_privs,
        apparmor: a.apparmor,
        process_label: a.process_label,
    };
    Ok(container::exec(ctx, &a.id, &opts)?)
}
