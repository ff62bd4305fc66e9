//! `delete [--force] ID`: stop what remains, remove the cgroup, run
//! poststop hooks, remove the state dir.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use berth_cgroups::Manager;

use super::{Context, Error, Status};
use crate::state::{ContainerDir, State};
use crate::{hooks, log, state};

/// `keel delete [--force] ID`.
pub fn delete(ctx: &Context, id: &str, force: bool) -> Result<(), Error> {
    let dir = match ctx.root.open(id) {
        Ok(d) => d,
        Err(state::Error::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let st = match dir.read() {
        Ok(st) => st,
        // A state file damaged by a crash: --force still removes the dir.
        Err(state::Error::Corrupt { .. }) if force => {
            dir.remove()?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let Some(st) = st else {
        // A create killed before it wrote anything: nothing but the dir.
        dir.remove()?;
        return Ok(());
    };
    let (status, init) = super::status_pinned(&st);
    match status {
        Status::Stopped | Status::Created => {}
        _ if force => {}
        s => {
            return Err(Error::Invalid(format!(
                "cannot delete container {id} that is not stopped: {s}"
            )))
        }
    }
    destroy(dir, &st, status, init)
}

/// Kill whatever runs, remove the cgroup, poststop hooks, remove the dir.
/// `init` is the pidfd [`super::status_pinned`] gave with `status`.
pub(super) fn destroy(
    dir: ContainerDir,
    st: &State,
    status: Status,
    init: Option<OwnedFd>,
) -> Result<(), Error> {
    if status != Status::Stopped {
        // The cgroup kill first: it thaws a paused container, so init can
        // die of the SIGKILL that follows.
        if let Some(m) = &st.cgroup {
            let _ = m.kill_all(libc::SIGKILL);
        }
        if let Some(fd) = init {
            kill_init(fd);
        }
    }
    if let Some(m) = &st.cgroup {
        if st.spec.linux().as_ref().is_some_and(has_shared_pidns) {
            let _ = m.kill_all(libc::SIGKILL);
        }
        remove_cgroup(m);
        log::debug(|| "cgroup removed".into());
    }
    if let Some(g) = &st.rdt {
        crate::rdt::remove(g);
    }
    if let Some(h) = st.spec.hooks().as_ref().and_then(|h| h.poststop().as_ref()) {
        if let Err(e) = hooks::run_all("poststop", Some(h), &super::hook_state(st, Status::Stopped))
        {
            log::warn(&crate::process::sync::ChildError::from_error(&e).message);
        }
    }
    dir.remove()?;
    Ok(())
}

fn has_shared_pidns(l: &oci_spec::runtime::Linux) -> bool {
    !l.namespaces().as_ref().is_some_and(|ns| {
        ns.iter()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none())
    })
}

/// SIGKILL init and wait (up to 10 s) until it is gone.
fn kill_init(fd: OwnedFd) {
    let _ = super::signal_pidfd(fd.as_fd(), libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let ts = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        if let Ok(n) = rustix::event::poll(&mut fds, Some(&ts)) {
            if n > 0 {
                return;
            }
        }
    }
}

/// Remove the cgroup, retrying briefly while killed processes leave it.
pub(super) fn remove_cgroup(m: &Manager) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match m.delete() {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => {
                log::warn(&crate::process::sync::ChildError::from_error(&e).message);
                return;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}
