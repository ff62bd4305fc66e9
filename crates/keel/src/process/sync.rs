//! The parent↔child protocol: one typed message per SOCK_SEQPACKET datagram,
//! at most one file descriptor attached (SCM_RIGHTS, received as `OwnedFd`).
//!
//! Order for a container's init (parent `P`, child `C`):
//!
//! ```text
//! P → C  Proceed{host_pid}     ids mapped, cgroup joined (or, on v1 without
//!                              a cgroup namespace, `cgroup_pending`: the
//!                              parent moves the child meanwhile and then
//!                              sends Joined, which init reads before its
//!                              first cgroup mount and before any request)
//!   staged namespaces only (see `staged.rs`):
//!   C → P  MapIds              (new user namespace) write my uid/gid maps
//!   P → C  IdsMapped
//!   C → P  Init{pid}           namespaces final; init is `pid` (a second
//!                              fork, for a new pid ns) or me (`None`)
//!   P → C  Proceed{host_pid}   init's host pid, net devices moved
//! C → P  RunHooks              (only when prestart/createRuntime hooks exist)
//! P → C  HooksDone
//! C → P  Console + fd          (only with process.terminal)
//! C → P  SeccompNotify + fd    (only with linux.seccomp.listenerPath)
//! C → P  Ready                 set up; waits on exec.fifo (create) or Start (run)
//! P → C  Start                 (run only)
//! ```
//!
//! `exec` uses the same messages minus the hooks; it never sends `Ready`:
//! the channel closing on execve (it is CLOEXEC) is the success signal.
//! Any side may send `Failed` instead of the next message.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

/// One step of the protocol.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Msg {
    /// parent → child: user ids mapped; the child's host pid. With
    /// `cgroup_pending`, the parent is still moving the child into its v1
    /// cgroups and sends `Joined` when done (init mounts meanwhile).
    Proceed {
        host_pid: i32,
        #[serde(default)]
        cgroup_pending: bool,
    },
    /// parent → child: the cgroup join announced as pending is done
    Joined,
    /// child → parent: my new user namespace exists, write its id maps
    MapIds,
    /// parent → child: the id maps are written
    IdsMapped,
    /// child → parent: the namespaces are final; the container's init is
    /// the host pid given (the second fork's child), or the sender
    Init { pid: Option<i32> },
    /// child → parent: mounts done, run prestart and createRuntime hooks now
    RunHooks,
    /// parent → child: those hooks succeeded
    HooksDone,
    /// child → parent: the pty master is attached
    Console,
    /// child → parent: the seccomp notify fd is attached
    SeccompNotify,
    /// child → parent: set up, waiting for start
    Ready,
    /// parent → child: start now (foreground `run` skips exec.fifo)
    Start,
    /// either side: the step failed
    Failed(ChildError),
}

/// An error that crossed the process boundary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ChildError {
    /// the whole error chain, one line
    pub message: String,
    /// the OS error number at the root of the chain, if any
    pub errno: Option<i32>,
}

impl ChildError {
    /// Flatten an error chain into one line, keeping the innermost errno.
    pub fn from_error(e: &(dyn std::error::Error + 'static)) -> Self {
        let mut message = e.to_string();
        let mut errno = None;
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(c) = cur {
            if let Some(io) = c.downcast_ref::<std::io::Error>() {
                errno = io.raw_os_error().or(errno);
            }
            if !std::ptr::eq(c, e) {
                message.push_str(": ");
                message.push_str(&c.to_string());
            }
            cur = c.source();
        }
        Self { message, errno }
    }
}

/// One end of the socketpair.
#[derive(Debug)]
pub struct Channel {
    sock: OwnedFd,
}

const MAX_MSG: usize = 16 * 1024;

impl Channel {
    /// A connected pair (both ends CLOEXEC).
    pub fn pair() -> std::io::Result<(Channel, Channel)> {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )?;
        Ok((Channel { sock: a }, Channel { sock: b }))
    }

    /// The socket (to keep it open across fd cleanup).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Send `msg`, with `fd` attached when given.
    pub fn send(&self, msg: &Msg, fd: Option<BorrowedFd<'_>>) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds;
        if let Some(fd) = fd {
            fds = [fd];
            control.push(SendAncillaryMessage::ScmRights(&fds));
        }
        let iov = [IoSlice::new(&bytes)];
        rustix::net::sendmsg(&self.sock, &iov, &mut control, SendFlags::NOSIGNAL)?;
        Ok(())
    }

    /// Receive the next message; `None` when the other side closed.
    pub fn recv(&self) -> std::io::Result<Option<(Msg, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; MAX_MSG];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let n = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match rustix::net::recvmsg(&self.sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)
            {
                Ok(r) => break r.bytes,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let mut fd = None;
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = m {
                for f in fds {
                    fd.get_or_insert(f);
                }
            }
        }
        if n == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..n]).map_err(std::io::Error::other)?;
        Ok(Some((msg, fd)))
    }

    /// Receive, treating a closed channel as an error naming `peer`.
    pub fn expect(&self, peer: &str) -> std::io::Result<(Msg, Option<OwnedFd>)> {
        self.recv()?.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{peer} exited during setup"),
            )
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_fd() {
        let (a, b) = Channel::pair().unwrap();
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        let proceed = Msg::Proceed {
            host_pid: 42,
            cgroup_pending: false,
        };
        a.send(&proceed, Some(f.as_fd())).unwrap();
        let (m, fd) = b.recv().unwrap().unwrap();
        assert_eq!(m, proceed);
        assert!(fd.is_some());
        b.send(&Msg::Ready, None).unwrap();
        assert_eq!(a.recv().unwrap().unwrap().0, Msg::Ready);
        drop(b);
        assert!(a.recv().unwrap().is_none());
    }

    #[test]
    fn error_chain_flattens() {
        #[derive(Debug, thiserror::Error)]
        #[error("mounting /proc")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::from_raw_os_error(libc::EPERM));
        let c = ChildError::from_error(&e);
        assert!(c.message.starts_with("mounting /proc: "), "{}", c.message);
        assert_eq!(c.errno, Some(libc::EPERM));
    }
}
