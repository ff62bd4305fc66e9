//! `process.terminal` with `--console-socket`: the runtime sends the pty
//! master as runc does (one SCM_RIGHTS message), and the container's stdio is
//! that pty.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;

use common::{bundle_with, Runtime};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

/// Accept one connection and return the fd it carries.
fn receive_master(listener: UnixListener) -> OwnedFd {
    let (stream, _) = listener.accept().unwrap();
    let mut buf = [0u8; 4096];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(&mut buf)];
    rustix::net::recvmsg(&stream, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC).unwrap();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m {
            return fds.next().unwrap();
        }
    }
    panic!("no fd received");
}

#[test]
fn console_socket_receives_the_pty_master() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let reader = std::thread::spawn(move || {
        let master = receive_master(listener);
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        // Read until the slave side is gone (EIO) or a timeout.
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < end {
            match rustix::io::read(&master, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&out).contains("DONE") {
                break;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    });
    let b = bundle_with(
        &[
            "sh",
            "-c",
            "test -t 0 && test -t 1 && echo TTY; tty; echo DONE; sleep 1",
        ],
        |c| {
            c["process"]["terminal"] = serde_json::json!(true);
        },
    );
    let c = rt.container("tty");
    c.cmd(
        "run",
        &[
            "-d",
            "--console-socket",
            sock.to_str().unwrap(),
            "--bundle",
            b.path().to_str().unwrap(),
        ],
        &[],
    )
    .assert_success();
    let out = reader.join().unwrap();
    assert!(out.contains("TTY"), "{out:?}");
    assert!(out.contains("/dev/pts/"), "{out:?}");
}

#[test]
fn terminal_without_console_socket_is_refused_when_detached() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = bundle_with(&["true"], |c| {
        c["process"]["terminal"] = serde_json::json!(true)
    });
    let c = rt.container("notty");
    c.create(&b, &[]).assert_failure();
    assert!(rt.list_ids().is_empty());
}
