//! A foreground `run` or `exec`: forward signals to the container process,
//! reap promptly (as a subreaper), proxy the pty, return the exit code.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use rustix::event::{PollFd, PollFlags};

use super::Error;
use crate::console;

fn full_set() -> libc::sigset_t {
    // SAFETY: a zeroed sigset filled by sigfillset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        set
    }
}

/// Block every signal (before the clone; the child unblocks them) so none is
/// lost between the clone and the signalfd.
pub fn block_signals() {
    let set = full_set();
    // SAFETY: sigprocmask with a valid set.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Wait for `pid` to exit, forwarding signals and proxying `console`.
/// Returns its exit code, or 128 + signal when it was killed.
pub fn supervise(pid: i32, console: Option<OwnedFd>, subreaper: bool) -> Result<i32, Error> {
    if subreaper {
        let _ = rustix::process::set_child_subreaper(rustix::process::Pid::from_raw(1));
    }
    let set = full_set();
    // SAFETY: signalfd on a valid set; the fd is owned right after.
    let raw = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
    if raw < 0 {
        return Err(Error::io("signalfd")(std::io::Error::last_os_error()));
    }
    // SAFETY: fresh fd from signalfd.
    let sigfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let _raw = console.as_ref().and_then(|_| console::RawMode::enter());
    if let Some(m) = &console {
        console::copy_winsize(m.as_fd());
    }
    let mut stdin_open = console.is_some();
    let mut exit: Option<i32> = None;
    // A child that exited before the signalfd existed left a pending SIGCHLD,
    // which the signalfd reports: nothing is lost.
    loop {
        if let Some(code) = exit {
            if let Some(m) = &console {
                drain(m);
            }
            return Ok(code);
        }
        let stdin = rustix::stdio::stdin();
        let mut fds = vec![PollFd::new(&sigfd, PollFlags::IN)];
        if let Some(m) = &console {
            fds.push(PollFd::new(m, PollFlags::IN));
            if stdin_open {
                fds.push(PollFd::new(&stdin, PollFlags::IN));
            }
        }
        match rustix::event::poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::errno("poll")(e)),
        }
        let ready: Vec<PollFlags> = fds.iter().map(|f| f.revents()).collect();
        drop(fds);
        if !ready[0].is_empty() {
            exit = on_signal(&sigfd, pid, console.as_ref())?;
        }
        if let Some(m) = &console {
            if ready.get(1).is_some_and(|r| !r.is_empty()) {
                // false at EIO (the slave side is closed): wait for the exit.
                copy(m.as_fd(), rustix::stdio::stdout());
            }
            if stdin_open
                && ready.get(2).is_some_and(|r| !r.is_empty())
                && !copy(rustix::stdio::stdin(), m.as_fd())
            {
                stdin_open = false;
            }
        }
    }
}

fn on_signal(sigfd: &OwnedFd, pid: i32, console: Option<&OwnedFd>) -> Result<Option<i32>, Error> {
    // SAFETY: signalfd_siginfo is plain data; read fills it entirely.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: reading into a buffer of exactly one siginfo.
    let n = unsafe { libc::read(sigfd.as_raw_fd(), std::ptr::addr_of_mut!(info).cast(), size) };
    if n != size as isize {
        return Ok(None);
    }
    let sig = info.ssi_signo as i32;
    match sig {
        libc::SIGCHLD => Ok(reap(pid)),
        libc::SIGWINCH if console.is_some() => {
            if let Some(m) = console {
                console::copy_winsize(m.as_fd());
            }
            Ok(None)
        }
        _ => {
            // SAFETY: forwarding a signal to our child.
            unsafe { libc::kill(pid, sig) };
            Ok(None)
        }
    }
}

/// Reap every exited child; the exit code once `pid` is among them.
fn reap(pid: i32) -> Option<i32> {
    let mut code = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on any child, non-blocking.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r <= 0 {
            return code;
        }
        if r == pid {
            code = Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                continue;
            });
        }
    }
}

/// Copy what is readable now; false at EOF or error.
fn copy(from: impl AsFd, to: impl AsFd) -> bool {
    let mut buf = [0u8; 8192];
    match rustix::io::read(&from, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut off = 0;
            while off < n {
                match rustix::io::write(&to, &buf[off..n]) {
                    Ok(w) => off += w,
                    Err(rustix::io::Errno::INTR) => {}
                    Err(_) => return false,
                }
            }
            true
        }
    }
}

/// After the exit: copy what the pty still holds.
fn drain(master: &OwnedFd) {
    loop {
        let mut fds = [PollFd::new(master, PollFlags::IN)];
        let ts = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) if n > 0 && fds[0].revents().contains(PollFlags::IN) => {
                if !copy(master.as_fd(), rustix::stdio::stdout()) {
                    return;
                }
            }
            _ => return,
        }
    }
}
