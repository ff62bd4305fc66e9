//! `exec`: a new process in a running container, joining its namespaces
//! (one setns with the init's pidfd) and cgroup.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespaceType, Process};

use super::{Context, Error, Status};
use crate::process::exec::{self as child, ExecConfig};
use crate::process::spawn::{self, Forked};
use crate::process::sync::{Channel, Msg};
use crate::{console, security, spec};

/// `exec` flags (runc's).
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub detach: bool,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
}

/// `keel exec`; returns the exit code (0 when detached).
pub fn exec(ctx: &Context, id: &str, opts: &ExecOptions) -> Result<i32, Error> {
    let dir = ctx.root.open(id)?;
    let st = dir.load()?;
    let (status, init) = super::status_pinned(&st);
    match status {
        Status::Running | Status::Created => {}
        Status::Paused => {
            return Err(Error::Invalid(format!(
                "cannot exec in paused container {id}"
            )))
        }
        s => {
            return Err(Error::Invalid(format!(
                "cannot exec in container {id}: it is {s}"
            )))
        }
    }
    let process = build_process(&st.spec, opts)?;
    // Bad process values fail here, before anything is joined or cloned.
    security::validate(&process, &st.spec)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.detach && opts.console_socket.is_none() {
        return Err(Error::Invalid(
            "exec --tty --detach needs --console-socket".into(),
        ));
    }
    let init = init.ok_or_else(|| super::not_running(id))?;
    let root = rustix::fs::open(
        format!("/proc/{}/root", st.pid),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(Error::errno(format!(
        "cannot open the root of container {id}"
    )))?;
    let flags = differing_namespaces(st.pid)?;
    let seccomp = ctx.seccomp(&st.spec)?;
    let manager = st.cgroup.clone();
    let cgroup_fd = match &manager {
        Some(m) => m.open_v2_dir()?,
        None => None,
    };
    // execCPUAffinity.initial: set on keel, inherited by the clone (before
    // it joins the cgroup).
    security::apply_initial_cpu_affinity(process.exec_cpu_affinity().as_ref(), None)?;
    let (parent, chan) = Channel::pair().map_err(Error::io("socketpair"))?;
    if !opts.detach {
        super::supervise::block_signals();
    }
    let early = flags & (libc::CLONE_NEWPID | libc::CLONE_NEWTIME) as u32;
    let saved = enter_early(init.as_fd(), early)?;
    let close_now = [dir.lock_fd(), parent.fd()];
    let cfg = ExecConfig {
        init: init.as_fd(),
        root: root.as_fd(),
        ns_flags: flags & !early,
        process: &process,
        spec: &st.spec,
        seccomp: seccomp.as_ref(),
        preserve_fds: opts.preserve_fds,
        close_now: &close_now,
    };
    // SAFETY: single-threaded; the child ends in execve or _exit.
    let forked = unsafe { spawn::clone(0, cgroup_fd.as_ref().map(|f| f.as_fd())) };
    let restored = restore_own(saved);
    let (pid, _pidfd, in_cgroup) = match forked {
        Ok(Forked::Child) => child::run(&cfg, &chan),
        Ok(Forked::Parent {
            pid,
            pidfd,
            in_cgroup,
        }) => (pid, pidfd, in_cgroup),
        Err(e) => return Err(Error::io("clone")(e)),
    };
    drop(chan);
    let guard = KillOnError(pid);
    restored?;
    if let (Some(m), false) = (&manager, in_cgroup) {
        m.add_pid(pid)?;
    }
    if let Some(g) = &st.rdt {
        crate::rdt::add(g, pid)?;
    }
    parent
        .send(
            &Msg::Proceed {
                host_pid: pid,
                cgroup_pending: false,
            },
            None,
        )
        .map_err(Error::io("sync with exec"))?;
    let console = serve(&parent, &st, opts)?;
    std::mem::forget(guard);
    if let Some(p) = &opts.pid_file {
        super::write_pid_file(p, pid)?;
    }
    drop(dir);
    if opts.detach {
        return Ok(0);
    }
    super::supervise::supervise(pid, console, false)
}

struct KillOnError(i32);

impl Drop for KillOnError {
    fn drop(&mut self) {
        // SAFETY: kill and reap our own child.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

/// Messages from the exec child until it execs (the channel closes).
fn serve(
    chan: &Channel,
    st: &crate::state::State,
    opts: &ExecOptions,
) -> Result<Option<OwnedFd>, Error> {
    let mut console = None;
    loop {
        let Some((msg, fd)) = chan.recv().map_err(Error::io("sync with exec"))? else {
            return Ok(console);
        };
        match msg {
            Msg::Console => {
                let fd = fd.ok_or_else(|| Error::Invalid("exec sent no pty".into()))?;
                match &opts.console_socket {
                    Some(sock) => console::send_master(sock, fd.as_fd())?,
                    None => console = Some(fd),
                }
            }
            Msg::SeccompNotify => super::create::send_notify(fd, st, &st.spec)?,
            Msg::Failed(e) => return Err(Error::Child(e)),
            other => {
                return Err(Error::Invalid(format!(
                    "unexpected message from exec: {other:?}"
                )))
            }
        }
    }
}

/// The process to run: `-p` file, or the container's process with args and
/// flags applied (as runc builds it).
fn build_process(spec: &oci_spec::runtime::Spec, opts: &ExecOptions) -> Result<Process, Error> {
    let mut p = match &opts.process {
        Some(path) => spec::load_process(path)?,
        None => {
            if opts.args.is_empty() {
                return Err(Error::Invalid(
                    "exec: specify a command (args) or --process".into(),
                ));
            }
            let mut p = spec.process().clone().unwrap_or_default();
            p.set_args(Some(opts.args.clone()));
            p.set_terminal(Some(opts.tty));
            p
        }
    };
    if opts.process.is_some() && opts.tty {
        p.set_terminal(Some(true));
    }
    if !opts.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for e in &opts.env {
            let key = e.split('=').next().unwrap_or_default();
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        p.set_env(Some(env));
    }
    if let Some(cwd) = &opts.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &opts.user {
        security::parse_exec_user(u)?.apply_to(&mut p);
    }
    if !opts.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(opts.additional_gids.clone()));
        p.set_user(user);
    }
    security::apply_exec_capability_additions(&mut p, &opts.caps)?;
    if opts.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(a) = &opts.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &opts.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    spec::validate_process(&p)?;
    Ok(p)
}

/// CLONE_NEW* bits of init's namespaces that differ from ours.
fn differing_namespaces(pid: i32) -> Result<u32, Error> {
    let kinds = [
        ("user", LinuxNamespaceType::User),
        ("mnt", LinuxNamespaceType::Mount),
        ("uts", LinuxNamespaceType::Uts),
        ("ipc", LinuxNamespaceType::Ipc),
        ("net", LinuxNamespaceType::Network),
        ("cgroup", LinuxNamespaceType::Cgroup),
        ("pid", LinuxNamespaceType::Pid),
        ("time", LinuxNamespaceType::Time),
    ];
    let mut flags = 0u32;
    for (name, t) in kinds {
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{name}"));
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
        if let (Ok(a), Ok(b)) = (theirs, ours) {
            use std::os::unix::fs::MetadataExt;
            if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
                flags |= t as u32;
            }
        }
    }
    Ok(flags)
}

/// pid/time namespaces affect only children: enter them before the clone,
/// keeping our own to return to.
fn enter_early(init: std::os::fd::BorrowedFd<'_>, flags: u32) -> Result<Vec<OwnedFd>, Error> {
    if flags == 0 {
        return Ok(Vec::new());
    }
    let mut saved = Vec::new();
    for (bit, name) in [(libc::CLONE_NEWPID, "pid"), (libc::CLONE_NEWTIME, "time")] {
        if flags & bit as u32 != 0 {
            let f = std::fs::File::open(format!("/proc/self/ns/{name}"))
                .map_err(Error::io(format!("open /proc/self/ns/{name}")))?;
            saved.push(OwnedFd::from(f));
        }
    }
    // SAFETY: setns with a valid pidfd and namespace flags.
    if unsafe { libc::setns(init.as_raw_fd(), flags as libc::c_int) } != 0 {
        return Err(Error::io("joining the container's pid namespace")(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(saved)
}

fn restore_own(saved: Vec<OwnedFd>) -> Result<(), Error> {
    for fd in saved {
        // SAFETY: setns back into a namespace fd we opened ourselves.
        if unsafe { libc::setns(fd.as_raw_fd(), 0) } != 0 {
            return Err(Error::io("returning to keel's namespaces")(
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}
