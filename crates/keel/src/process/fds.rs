//! File descriptor hygiene before execve: nothing of the host may leak into
//! the container (CVE-2024-21626 class).

use std::os::fd::RawFd;

/// Close every descriptor ≥ 3 that is not in `keep`.
pub fn close_all_except(keep: &[RawFd]) -> std::io::Result<()> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&f| f >= 3).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first: u32 = 3;
    for &k in &keep {
        let k = k as u32;
        if k > first {
            close_range(first, k - 1)?;
        }
        first = k + 1;
    }
    close_range(first, u32::MAX)
}

fn close_range(first: u32, last: u32) -> std::io::Result<()> {
    if first > last {
        return Ok(());
    }
    // SAFETY: close_range only closes descriptors; none of the closed ones is
    // referenced again by this process (callers list what they still use).
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if r == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    // Old kernel: close what /proc/self/fd lists.
    let fds: Vec<u32> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd: &u32| fd >= first && fd <= last)
        .collect();
    for fd in fds {
        // SAFETY: as above.
        unsafe { libc::close(fd as i32) };
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn keeps_listed_and_closes_rest() {
        // Run in a forked child: closing fds in the test process would break
        // the test harness.
        let keep = std::fs::File::open("/proc/self/stat").unwrap();
        let other = std::fs::File::open("/proc/self/status").unwrap();
        let (k, o) = (keep.as_raw_fd(), other.as_raw_fd());
        // SAFETY: the child only makes async-signal-safe syscalls and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let ok = close_all_except(&[k]).is_ok()
                // SAFETY: fcntl F_GETFD on a number is harmless.
                && unsafe { libc::fcntl(k, libc::F_GETFD) } >= 0
                // SAFETY: as above.
                && unsafe { libc::fcntl(o, libc::F_GETFD) } < 0;
            // SAFETY: _exit in the forked child.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(status, 0);
    }
}
