//! One clone: `clone3` (straight into the cgroup when a v2 dir fd is given,
//! with a pidfd), falling back to `clone` on kernels without clone3.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The kernel's `struct clone_args` (version 2, with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Which side of the clone we are on.
pub enum Forked {
    /// the new process
    Child,
    /// the caller, with the child's pid and pidfd
    Parent {
        pid: i32,
        pidfd: OwnedFd,
        /// whether the child started inside the given cgroup
        in_cgroup: bool,
    },
}

/// Clone the calling process (fork semantics: copied memory, same stack)
/// with the extra `flags` (CLONE_NEW*, or CLONE_PARENT), into `cgroup` when
/// possible.
///
/// # Safety
/// The caller must be single-threaded, and the child must only run code that
/// is sound after a fork of a single-threaded process (it is), ending in
/// execve or `_exit`.
pub unsafe fn clone(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> std::io::Result<Forked> {
    let mut pidfd: i32 = -1;
    let mut args = CloneArgs {
        flags: flags | CLONE_PIDFD,
        pidfd: std::ptr::addr_of_mut!(pidfd) as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if flags & libc::CLONE_PARENT as u64 != 0 {
        // clone3 wants no exit signal with CLONE_PARENT: the child gets
        // ours (SIGCHLD) and reports to our parent.
        args.exit_signal = 0;
    }
    if let Some(cg) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = cg.as_raw_fd() as u64;
    }
    loop {
        // SAFETY: `args` is a valid clone_args of the size we pass; with no
        // stack given the child continues on a copy of our stack, like fork.
        let r = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                std::ptr::addr_of_mut!(args),
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if r >= 0 {
            return Ok(forked(r as i32, pidfd, args.flags & CLONE_INTO_CGROUP != 0));
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            // A cgroup clone3 cannot enter (v1, or busy): join it later.
            Some(libc::EBUSY | libc::EOPNOTSUPP | libc::EINVAL) if args.cgroup != 0 => {
                args.flags &= !CLONE_INTO_CGROUP;
                args.cgroup = 0;
            }
            Some(libc::ENOSYS) => break,
            _ => return Err(err),
        }
    }
    // SAFETY: legacy clone with fork semantics (no new stack), the pidfd is
    // written through the parent_tid pointer as CLONE_PIDFD documents.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | CLONE_PIDFD) as libc::c_ulong | libc::SIGCHLD as libc::c_ulong,
            0usize,
            std::ptr::addr_of_mut!(pidfd),
            0usize,
            0usize,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(forked(r as i32, pidfd, false))
}

fn forked(r: i32, pidfd: i32, in_cgroup: bool) -> Forked {
    if r == 0 {
        return Forked::Child;
    }
    Forked::Parent {
        pid: r,
        // SAFETY: the kernel returned a fresh pidfd owned by nobody else.
        pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        in_cgroup,
    }
}

/// Leave the process now, without running destructors or atexit handlers
/// (the child of a clone must not flush the parent's buffers twice).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}
