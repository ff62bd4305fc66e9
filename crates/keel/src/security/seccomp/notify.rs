//! `linux.seccomp.listenerPath`: hand the notify fd to the seccomp agent.
//!
//! The container process loads the filter with SECCOMP_FILTER_FLAG_NEW_LISTENER
//! and passes the fd to the runtime's parent over its sync socket; the parent
//! then connects to the agent's unix socket and sends one message whose body
//! is the "container process state" JSON of the runtime spec and whose
//! SCM_RIGHTS payload is the notify fd (named `seccompFd` in `fds`).

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use serde_json::{json, Value};

use super::Error;

/// The spec's name for the notify fd in `fds`.
pub const SECCOMP_FD_NAME: &str = "seccompFd";

/// The container process state sent to the agent: `ociVersion`, `fds`,
/// `pid`, `metadata` (= `linux.seccomp.listenerMetadata`) and the container
/// `state` (what `keel state` prints).
pub fn container_process_state(state: &Value, pid: i32, metadata: Option<&str>) -> Value {
    let version = state
        .get("ociVersion")
        .and_then(Value::as_str)
        .unwrap_or("1.2.0");
    let mut msg = json!({
        "ociVersion": version,
        "fds": [SECCOMP_FD_NAME],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = metadata.filter(|m| !m.is_empty()) {
        msg["metadata"] = json!(m);
    }
    msg
}

/// Send the seccomp notify fd to the agent listening on `listener_path`
/// (SCM_RIGHTS, with the container process state JSON as the message body,
/// as the runtime spec's "seccomp state" describes), then close our copy.
/// `container_process_state` is the whole message, see
/// [`container_process_state`].
pub fn send_to_listener(
    listener_path: &Path,
    notify_fd: OwnedFd,
    container_process_state: &Value,
) -> Result<(), Error> {
    let what = || {
        format!(
            "sending the seccomp notify fd to {}",
            listener_path.display()
        )
    };
    let body = serde_json::to_vec(container_process_state)
        .map_err(|e| Error::step(what(), std::io::Error::other(e)))?;
    let stream = UnixStream::connect(listener_path).map_err(|e| Error::step(what(), e))?;
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [notify_fd.as_fd()];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        // `space` is sized for exactly one fd, so this cannot happen; but
        // sending the state without the fd would leave the agent waiting.
        return Err(Error::step(
            what(),
            std::io::Error::other("no room for the notify fd in the control message"),
        ));
    }
    let sent = rustix::net::sendmsg(
        &stream,
        &[IoSlice::new(&body)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map_err(|e| Error::step(what(), e))?;
    // The fd travelled with the first byte; finish a short write plainly.
    if sent < body.len() {
        use std::io::Write;
        (&stream)
            .write_all(&body[sent..])
            .map_err(|e| Error::step(what(), e))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::io::IoSliceMut;
    use std::os::unix::net::UnixListener;

    #[test]
    fn state_message_shape() {
        let state = json!({"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": 42, "bundle": "/b"});
        let msg = container_process_state(&state, 42, Some("key=value"));
        assert_eq!(msg["fds"], json!(["seccompFd"]));
        assert_eq!(msg["pid"], 42);
        assert_eq!(msg["metadata"], "key=value");
        assert_eq!(msg["state"]["id"], "c1");
        assert_eq!(msg["ociVersion"], "1.2.0");
        assert!(container_process_state(&state, 1, None)
            .get("metadata")
            .is_none());
    }

    #[test]
    fn sends_fd_and_body() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let (r, w) = rustix::pipe::pipe().unwrap();
        let msg = container_process_state(&json!({"id": "x"}), 7, Some("m"));
        let expected = msg.clone();
        let agent = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 65536];
            let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let got = rustix::net::recvmsg(
                &conn,
                &mut [IoSliceMut::new(&mut buf)],
                &mut control,
                RecvFlags::empty(),
            )
            .unwrap();
            let mut fds: Vec<OwnedFd> = Vec::new();
            for m in control.drain() {
                if let RecvAncillaryMessage::ScmRights(r) = m {
                    fds.extend(r);
                }
            }
            let body: Value = serde_json::from_slice(&buf[..got.bytes]).unwrap();
            (body, fds)
        });
        send_to_listener(&path, w, &msg).unwrap();
        let (body, fds) = agent.join().unwrap();
        assert_eq!(body, expected);
        assert_eq!(fds.len(), 1);
        // The received fd is the pipe's write end: it reaches our read end.
        rustix::io::write(&fds[0], b"ok").unwrap();
        let mut b = [0u8; 2];
        rustix::io::read(&r, &mut b).unwrap();
        assert_eq!(&b, b"ok");
    }
}
