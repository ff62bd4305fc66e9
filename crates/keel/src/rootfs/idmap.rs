//! A user namespace holding a mount's `uidMappings`/`gidMappings`, for
//! `MOUNT_ATTR_IDMAP`.
//!
//! A short-lived child unshares a user namespace and waits; we write its maps
//! through `/proc/<pid>` (the host's procfs, still mounted before pivot), keep
//! an fd of its namespace, and let it exit.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

use oci_spec::runtime::LinuxIdMapping;

/// Lines of a `uid_map`/`gid_map` file.
pub(crate) fn map_text(maps: &[LinuxIdMapping]) -> String {
    let mut s = String::new();
    for m in maps {
        // Writing to a String cannot fail.
        let _ = writeln!(s, "{} {} {}", m.container_id(), m.host_id(), m.size());
    }
    s
}

/// A pipe whose ends close on exec.
fn pipe() -> io::Result<(std::fs::File, std::fs::File)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    Ok((std::fs::File::from(r), std::fs::File::from(w)))
}

/// The child: unshare a user namespace, report its host pid, wait for EOF.
/// Only raw syscalls here: we may have been forked from a threaded process.
fn child(ready: &std::fs::File, done_r: &std::fs::File, done_w: &std::fs::File) -> ! {
    // SAFETY: after fork only async-signal-safe calls: the fds are the
    // pipe ends `userns` opened and still holds (closing `done_w` here is
    // fine: this process never returns to drop it); readlink writes at most
    // `buf.len()` bytes and write sends only the `n` it wrote; nothing
    // allocates or takes a lock, and we leave through _exit.
    unsafe {
        libc::close(done_w.as_raw_fd());
        if libc::unshare(libc::CLONE_NEWUSER) != 0 {
            libc::_exit(1);
        }
        let mut buf = [0u8; 32];
        let n = libc::readlink(c"/proc/self".as_ptr(), buf.as_mut_ptr().cast(), buf.len());
        if n <= 0 {
            libc::_exit(1);
        }
        libc::write(ready.as_raw_fd(), buf.as_ptr().cast(), n as usize);
        libc::close(ready.as_raw_fd());
        let mut b = 0u8;
        libc::read(done_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
        libc::_exit(0);
    }
}

/// A user namespace fd whose maps are `uid` and `gid`.
pub(crate) fn userns(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> io::Result<OwnedFd> {
    let (mut ready_r, ready_w) = pipe()?;
    let (done_r, done_w) = pipe()?;
    // SAFETY: the child only makes raw syscalls and _exits (see `child`).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        child(&ready_w, &done_r, &done_w);
    }
    drop(ready_w);
    drop(done_r);
    let result = (|| {
        let mut buf = String::new();
        ready_r.read_to_string(&mut buf)?;
        let host_pid = buf.trim();
        if host_pid.is_empty() {
            return Err(io::Error::other(
                "the helper could not create a user namespace",
            ));
        }
        let proc = std::path::Path::new("/proc").join(host_pid);
        std::fs::OpenOptions::new()
            .write(true)
            .open(proc.join("uid_map"))?
            .write_all(map_text(uid).as_bytes())?;
        std::fs::OpenOptions::new()
            .write(true)
            .open(proc.join("gid_map"))?
            .write_all(map_text(gid).as_bytes())?;
        let ns = std::fs::File::open(proc.join("ns/user"))?;
        Ok(OwnedFd::from(ns))
    })();
    drop(done_w);
    let mut status = 0;
    // Reap the helper (it exits once `done_w` is closed); its status adds
    // nothing to `result`.
    loop {
        // SAFETY: pid is our child; status is a valid out pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break;
        }
    }
    result
}
