//! The parent's side of staged namespaces (`process::staged`): the child
//! builds its namespaces after the clone, asking for its id maps, and may
//! fork the container's init as PID 1 of a new pid namespace.

use std::os::fd::OwnedFd;

use oci_spec::runtime::Spec;

use super::Error;
use crate::process::sync::{Channel, ChildError, Msg};

/// Serve the staged steps: write the id maps of the child's new user
/// namespace, then learn which process is the container's init. After a
/// second fork, the intermediate is reaped and the init (our child too, by
/// `CLONE_PARENT`) replaces it; `guard_pid` (what a failed create kills)
/// follows. Returns init's pid and pidfd.
pub(super) fn serve(
    chan: &Channel,
    child: i32,
    pidfd: OwnedFd,
    spec: &Spec,
    guard_pid: &mut i32,
) -> Result<(i32, OwnedFd), Error> {
    loop {
        let msg = match recv_unless_dead(chan, &pidfd)? {
            Some((m, _)) => m,
            None => return Err(Error::Invalid("container init exited during setup".into())),
        };
        match msg {
            Msg::MapIds => {
                if let Err(e) = super::create::write_id_maps(child, spec) {
                    let report = ChildError::from_error(&e);
                    let _ = chan.send(&Msg::Failed(report), None);
                    return Err(e);
                }
                chan.send(&Msg::IdsMapped, None)
                    .map_err(Error::io("sync with init"))?;
            }
            Msg::Init { pid: None } => return Ok((child, pidfd)),
            Msg::Init { pid: Some(init) } => return adopt_init(child, init, guard_pid),
            Msg::Failed(e) => return Err(Error::Child(e)),
            other => {
                return Err(Error::Invalid(format!(
                    "unexpected message from init: {other:?}"
                )))
            }
        }
    }
}

/// The next message, or `None` once the child has exited without sending
/// one: after the second fork the grandchild keeps the channel open, so a
/// killed intermediate would otherwise leave us waiting forever.
fn recv_unless_dead(
    chan: &Channel,
    child: &OwnedFd,
) -> Result<Option<(Msg, Option<OwnedFd>)>, Error> {
    use rustix::event::{PollFd, PollFlags};
    let sock = chan.fd();
    loop {
        let mut fds = [
            PollFd::new(&sock, PollFlags::IN),
            PollFd::new(child, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::errno("poll")(e)),
        }
        // A message sent before exiting is read first.
        if !fds[0].revents().is_empty() {
            return chan.recv().map_err(Error::io("sync with init"));
        }
        if !fds[1].revents().is_empty() {
            return Ok(None);
        }
    }
}

/// Reap the intermediate `child`, and make `init` (its child, reparented to
/// us from birth) the container's process.
fn adopt_init(child: i32, init: i32, guard_pid: &mut i32) -> Result<(i32, OwnedFd), Error> {
    let mut status = 0;
    // SAFETY: waitpid on our own child, which exits right after reporting.
    let r = unsafe { libc::waitpid(child, &mut status, 0) };
    if r != child {
        return Err(Error::io("waiting for the intermediate process")(
            std::io::Error::last_os_error(),
        ));
    }
    *guard_pid = init;
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(Error::Invalid(
            "the process forking the container's init failed".into(),
        ));
    }
    // Our own child, still running: then the pid cannot have been reused.
    // SAFETY: non-blocking waitpid on a pid we only query.
    if unsafe { libc::waitpid(init, &mut status, libc::WNOHANG) } != 0 {
        return Err(Error::Invalid(format!(
            "the container's init {init} is not a running child of keel"
        )));
    }
    let pid = rustix::process::Pid::from_raw(init)
        .ok_or_else(|| Error::Invalid(format!("invalid init pid {init}")))?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(Error::errno("pidfd_open of the container's init"))?;
    Ok((init, pidfd))
}
