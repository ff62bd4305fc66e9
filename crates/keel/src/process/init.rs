//! The container's init, in the cloned child: from the clone to execve.
//!
//! The whole order of operations, one line per step, is [`steps`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use oci_spec::runtime::{Process, Spec};

use super::finish::{self, Exe};
use super::namespaces::Plan;
use super::sync::{Channel, Msg};
use super::Error;
use crate::{console, hooks, rootfs, security};

/// How init learns that `start` was called.
pub enum Gate<'a> {
    /// block opening exec.fifo (an O_PATH fd to it, reopened via /proc/self/fd)
    Fifo(BorrowedFd<'a>),
    /// wait for [`Msg::Start`] (foreground and detached `run`)
    Message,
}

/// Everything init needs; it lives in the parent's memory, which the child
/// has a copy of.
pub struct InitConfig<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub process: &'a Process,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub annotations: &'a HashMap<String, String>,
    pub namespaces: &'a Plan,
    pub gate: Gate<'a>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub seccomp: Option<&'a security::SeccompFilter>,
    /// fds of the parent this child must not keep (the state dir lock)
    pub close_now: &'a [BorrowedFd<'a>],
}

/// Run init; never returns. A failure is sent to the parent (or printed
/// when the parent is gone) and the process exits 1.
pub fn run(cfg: &InitConfig<'_>, chan: &Channel) -> ! {
    match steps(cfg, chan) {
        Ok(never) => match never {},
        Err(e) => finish::report_and_exit(chan, "init", &e),
    }
}

fn steps(cfg: &InitConfig<'_>, chan: &Channel) -> Result<Infallible, Error> {
    let spec = cfg.spec;
    let process = cfg.process;
    early_setup(cfg.close_now)?;
    let (mut host_pid, pending) = wait_proceed(chan)?;
    let join = CgroupJoin(std::cell::Cell::new(pending));
    if cfg.namespaces.staged {
        host_pid = super::staged::enter(cfg.namespaces, chan)?;
    } else {
        cfg.namespaces.enter_child()?;
    }
    become_root_in_userns(cfg.namespaces.new_user);
    new_session()?;
    join_keyring(cfg);
    let before_cgroup = || join.wait(chan);
    let setup = rootfs::Setup {
        spec,
        rootfs: cfg.rootfs,
        bundle: cfg.bundle,
        before_cgroup: &before_cgroup,
    };
    rootfs::prepare(&setup)?;
    // At the latest here: the next messages are requests and answers.
    join.wait(chan).map_err(|e| Error::Step {
        what: "wait for the cgroup join".into(),
        source: e,
    })?;
    set_hostname(spec)?;
    parent_hooks(spec, chan)?;
    let hooks = spec.hooks().as_ref();
    let state = |status| hooks::state_json(cfg.id, status, host_pid, cfg.bundle, cfg.annotations);
    hooks::run_all(
        "createContainer",
        hooks.and_then(|h| h.create_container().as_ref()),
        &state("creating"),
    )?;
    rootfs::pivot(&setup, cfg.no_pivot)?;
    if process.terminal().unwrap_or(false) {
        open_console(process, chan, true)?;
    }
    write_sysctls(spec)?;
    rootfs::finalize(&setup)?;
    let exe = Exe::resolve(process)?;
    let mut keep = vec![chan.fd().as_raw_fd()];
    if let Gate::Fifo(fd) = cfg.gate {
        keep.push(fd.as_raw_fd());
    }
    finish::close_fds(cfg.preserve_fds, &keep)?;
    finish::enter_cwd(process)?;
    finish::die_with_parent(false);
    super::mempolicy::apply(spec)?;
    let notify = security::apply_process(process, spec, cfg.seccomp)?;
    if let Some(fd) = notify {
        chan.send(&Msg::SeccompNotify, Some(fd.as_fd()))
            .map_err(Error::Sync)?;
    }
    chan.send(&Msg::Ready, None).map_err(Error::Sync)?;
    wait_start(&cfg.gate, chan)?;
    hooks::run_all(
        "startContainer",
        hooks.and_then(|h| h.start_container().as_ref()),
        &state("created"),
    )?;
    Err(exe.exec())
}

/// The parent's move of init into its v1 cgroups, announced as pending by
/// Proceed: init waits for `Joined` only where membership matters (a cgroup
/// mount reads /proc/self/cgroup) or before the next exchange.
struct CgroupJoin(std::cell::Cell<bool>);

impl CgroupJoin {
    fn wait(&self, chan: &Channel) -> std::io::Result<()> {
        if !self.0.get() {
            return Ok(());
        }
        match chan.expect("keel") {
            Ok((Msg::Joined, _)) => {
                self.0.set(false);
                Ok(())
            }
            Ok((Msg::Failed(e), _)) => Err(std::io::Error::other(e.message)),
            Ok((other, _)) => Err(std::io::Error::other(format!(
                "expected Joined from keel, got {other:?}"
            ))),
            Err(e) => Err(e),
        }
    }
}

/// First thing after the clone: drop what the parent holds, die with it,
/// make keel's image unreadable to the container, unblock signals.
/// Shared with the `exec` child.
pub(super) fn early_setup(close_now: &[BorrowedFd<'_>]) -> Result<(), Error> {
    for fd in close_now {
        // SAFETY: the parent's lock fd is a copy in our table that nothing in
        // the child uses; closing it releases the child's share of the flock.
        unsafe { libc::close(fd.as_raw_fd()) };
    }
    finish::die_with_parent(true);
    finish::set_undumpable()?;
    finish::unblock_signals();
    Ok(())
}

/// Proceed: init's host pid, and whether the cgroup join is still pending.
pub(super) fn wait_proceed(chan: &Channel) -> Result<(i32, bool), Error> {
    match chan.expect("keel").map_err(Error::Sync)? {
        (
            Msg::Proceed {
                host_pid,
                cgroup_pending,
            },
            _,
        ) => Ok((host_pid, cgroup_pending)),
        (Msg::Failed(e), _) => Err(Error::Parent(e)),
        (other, _) => Err(Error::Protocol(format!("{other:?}"))),
    }
}

/// In a new user namespace, become its root (uid/gid 0 mapped by the parent).
fn become_root_in_userns(new_user: bool) {
    if new_user {
        // SAFETY: plain credential syscalls; failure (root unmapped) leaves us
        // as we were, and the user switch later sets the final ids.
        unsafe {
            libc::setresgid(0, 0, 0);
            libc::setresuid(0, 0, 0);
        }
    }
}

fn new_session() -> Result<(), Error> {
    rustix::process::setsid()
        .map(|_| ())
        .map_err(|e| Error::Step {
            what: "setsid".into(),
            source: e.into(),
        })
}

/// A fresh session keyring named after the container (runc's default), so
/// containers never share the host's keys. Best effort.
fn join_keyring(cfg: &InitConfig<'_>) {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    if cfg.no_new_keyring {
        return;
    }
    if let Ok(name) = std::ffi::CString::new(cfg.id) {
        // SAFETY: keyctl with a valid NUL-terminated name; no memory is retained.
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    }
}

fn set_hostname(spec: &Spec) -> Result<(), Error> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        rustix::system::sethostname(h.as_bytes()).map_err(|e| Error::Step {
            what: format!("sethostname {h:?}"),
            source: e.into(),
        })?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        rustix::system::setdomainname(d.as_bytes()).map_err(|e| Error::Step {
            what: format!("setdomainname {d:?}"),
            source: e.into(),
        })?;
    }
    Ok(())
}

/// prestart and createRuntime hooks run in the parent (runtime namespace)
/// while we wait.
fn parent_hooks(spec: &Spec, chan: &Channel) -> Result<(), Error> {
    if !has_parent_hooks(spec) {
        return Ok(());
    }
    chan.send(&Msg::RunHooks, None).map_err(Error::Sync)?;
    match chan.expect("keel").map_err(Error::Sync)? {
        (Msg::HooksDone, _) => Ok(()),
        (Msg::Failed(e), _) => Err(Error::Parent(e)),
        (other, _) => Err(Error::Protocol(format!("{other:?}"))),
    }
}

/// Whether the spec has prestart or createRuntime hooks.
pub fn has_parent_hooks(spec: &Spec) -> bool {
    spec.hooks().as_ref().is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    })
}

/// Make a pty in the container, make it our stdio and controlling terminal,
/// bind it on /dev/console (init only), and hand the master to the parent.
pub(super) fn open_console(process: &Process, chan: &Channel, bind: bool) -> Result<(), Error> {
    let size = process
        .console_size()
        .map(|b| (b.height() as u16, b.width() as u16));
    let (master, slave) = console::open_pty(size)?;
    console::attach_slave(&slave)?;
    if bind {
        rootfs::bind_console(&slave)?;
    }
    chan.send(&Msg::Console, Some(master.as_fd()))
        .map_err(Error::Sync)
}

fn write_sysctls(spec: &Spec) -> Result<(), Error> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (key, value) in sysctl {
        if key.is_empty()
            || key.starts_with('/')
            || key.split(['.', '/']).any(|p| p.is_empty() || p == "..")
        {
            return Err(Error::Step {
                what: format!("linux.sysctl: invalid key {key:?}"),
                source: std::io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|source| Error::Step {
            what: format!("linux.sysctl: cannot set {key} to {value:?}"),
            source,
        })?;
    }
    Ok(())
}

fn wait_start(gate: &Gate<'_>, chan: &Channel) -> Result<(), Error> {
    match gate {
        Gate::Fifo(fd) => {
            let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
            let fifo = rustix::fs::open(
                path.as_str(),
                rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| Error::Step {
                what: "open exec.fifo".into(),
                source: e.into(),
            })?;
            rustix::io::write(&fifo, b"0").map_err(|e| Error::Step {
                what: "write exec.fifo".into(),
                source: e.into(),
            })?;
            Ok(())
        }
        Gate::Message => match chan.recv().map_err(Error::Sync)? {
            Some((Msg::Start, _)) => Ok(()),
            Some((Msg::Failed(e), _)) => Err(Error::Parent(e)),
            Some((other, _)) => Err(Error::Protocol(format!("{other:?}"))),
            None => finish::exit_code_failure(),
        },
    }
}
