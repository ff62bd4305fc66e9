//! An `exec`ed process, in the cloned child: join the container (one setns
//! with the init's pidfd), then the same final steps as init.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use oci_spec::runtime::{Process, Spec};

use super::finish::{self, Exe};
use super::sync::{Channel, Msg};
use super::Error;
use crate::security;

/// What the exec child needs.
pub struct ExecConfig<'a> {
    /// pidfd of the container's init
    pub init: BorrowedFd<'a>,
    /// init's root directory (`/proc/<pid>/root`, opened O_PATH): the
    /// namespace's root is not the container's when it was made with
    /// `--no-pivot` (chroot), so the child enters this one explicitly
    pub root: BorrowedFd<'a>,
    /// CLONE_NEW* bits of the namespaces to enter (pid/time were entered by
    /// the parent before the clone)
    pub ns_flags: u32,
    pub process: &'a Process,
    pub spec: &'a Spec,
    pub seccomp: Option<&'a security::SeccompFilter>,
    pub preserve_fds: u32,
    /// fds of the parent this child must not keep (the state dir lock)
    pub close_now: &'a [BorrowedFd<'a>],
}

/// Run the exec child; never returns.
pub fn run(cfg: &ExecConfig<'_>, chan: &Channel) -> ! {
    match steps(cfg, chan) {
        Ok(never) => match never {},
        Err(e) => finish::report_and_exit(chan, "exec", &e),
    }
}

fn steps(cfg: &ExecConfig<'_>, chan: &Channel) -> Result<Infallible, Error> {
    super::init::early_setup(cfg.close_now)?;
    super::init::wait_proceed(chan)?;
    join(cfg)?;
    enter_root(cfg.root)?;
    let terminal = cfg.process.terminal().unwrap_or(false);
    if terminal {
        rustix::process::setsid().map_err(|e| Error::Step {
            what: "setsid".into(),
            source: e.into(),
        })?;
        super::init::open_console(cfg.process, chan, false)?;
    }
    let exe = Exe::resolve(cfg.process)?;
    finish::close_fds(cfg.preserve_fds, &[chan.fd().as_raw_fd()])?;
    finish::enter_cwd(cfg.process)?;
    finish::die_with_parent(false);
    if let Some(fd) = security::apply_process(cfg.process, cfg.spec, cfg.seccomp)? {
        chan.send(&Msg::SeccompNotify, Some(fd.as_fd()))
            .map_err(Error::Sync)?;
    }
    Err(exe.exec())
}

/// chroot to init's root (after setns, which put us at the namespace root).
fn enter_root(root: BorrowedFd<'_>) -> Result<(), Error> {
    let step = |what: &str| {
        let what = what.to_owned();
        move |e: rustix::io::Errno| Error::Step {
            what,
            source: e.into(),
        }
    };
    rustix::process::fchdir(root).map_err(step("entering the container's root"))?;
    rustix::process::chroot(".").map_err(step("chroot to the container's root"))?;
    rustix::process::chdir("/").map_err(step("chdir /"))
}

/// setns(pidfd, flags): every namespace at once, atomically.
fn join(cfg: &ExecConfig<'_>) -> Result<(), Error> {
    if cfg.ns_flags == 0 {
        return Ok(());
    }
    // SAFETY: setns on a valid pidfd with CLONE_NEW* flags; we are
    // single-threaded as setns(CLONE_NEWNS/NEWUSER) requires.
    let r = unsafe { libc::setns(cfg.init.as_raw_fd(), cfg.ns_flags as libc::c_int) };
    if r != 0 {
        return Err(Error::Step {
            what: "joining the container's namespaces".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}
