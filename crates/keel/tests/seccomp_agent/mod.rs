//! A minimal seccomp agent for the tests: accept one connection, take the
//! notify fd and the container process state JSON, answer one notification
//! with EROFS. Every wait has a deadline so a broken runtime fails the test
//! instead of hanging it.

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
use rustix::event::{PollFd, PollFlags};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(20);

/// What the agent saw: the state JSON and the notified syscall's name.
pub type Seen = Result<(Value, String), String>;

/// Wait until `fd` is readable or the deadline passes.
fn wait_readable(fd: impl AsFd, what: &str) -> Result<(), String> {
    let ts = rustix::time::Timespec {
        tv_sec: DEADLINE.as_secs() as i64,
        tv_nsec: 0,
    };
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    match rustix::event::poll(&mut fds, Some(&ts)) {
        Ok(n) if n > 0 => Ok(()),
        other => Err(format!("agent: no {what} within {DEADLINE:?} ({other:?})")),
    }
}

fn serve(listener: UnixListener) -> Seen {
    wait_readable(&listener, "connection")?;
    let (conn, _) = listener.accept().map_err(|e| e.to_string())?;
    wait_readable(&conn, "message")?;
    let mut buf = vec![0u8; 1 << 16];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        &conn,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::empty(),
    )
    .map_err(|e| e.to_string())?;
    let fd: OwnedFd = control
        .drain()
        .find_map(|m| match m {
            RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
            _ => None,
        })
        .ok_or("agent: no fd in the message")?;
    let state: Value = serde_json::from_slice(&buf[..got.bytes]).map_err(|e| e.to_string())?;
    wait_readable(&fd, "notification")?;
    let req = ScmpNotifReq::receive(fd.as_raw_fd()).map_err(|e| e.to_string())?;
    let name = req.data.syscall.get_name().unwrap_or_default();
    ScmpNotifResp::new_error(req.id, -libc::EROFS, ScmpNotifRespFlags::empty())
        .respond(fd.as_raw_fd())
        .map_err(|e| e.to_string())?;
    Ok((state, name))
}

/// Listen on `sock` and serve one container in a thread.
pub fn spawn(sock: &Path) -> JoinHandle<Seen> {
    let listener =
        UnixListener::bind(sock).unwrap_or_else(|e| panic!("bind {}: {e}", sock.display()));
    std::thread::spawn(move || serve(listener))
}
