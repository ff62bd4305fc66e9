//! `openat2(2)` retried on `EAGAIN`.
//!
//! With `RESOLVE_IN_ROOT` (or `RESOLVE_BENEATH`), a lookup that meets `..`
//! while any rename or mount happens anywhere on the system fails with
//! `EAGAIN`: the kernel cannot prove the `..` stayed inside, so it gives up
//! rather than risk an escape, and asks the caller to try again. Lookups are
//! side-effect free, so they are repeated a bounded number of times.

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// How often a lookup is repeated before `EAGAIN` is returned.
const TRIES: usize = 128;

/// `openat2`, repeated while the kernel answers `EAGAIN`.
pub(crate) fn openat2<Fd: AsFd, P: rustix::path::Arg + Copy>(
    dir: Fd,
    path: P,
    flags: OFlags,
    mode: Mode,
    resolve: ResolveFlags,
) -> Result<OwnedFd, Errno> {
    let dir = dir.as_fd();
    let mut tries = 1;
    loop {
        match rustix::fs::openat2(dir, path, flags, mode, resolve) {
            Err(Errno::AGAIN) if tries < TRIES => tries += 1,
            r => return r,
        }
    }
}
