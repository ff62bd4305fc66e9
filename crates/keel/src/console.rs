//! The container's terminal: a pty made inside the container (its devpts),
//! its master handed to the `--console-socket` listener exactly as runc does
//! (one SCM_RIGHTS message whose payload is the file name), or proxied by a
//! foreground `run`/`exec` to its own stdio.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::{OptionalActions, Termios, Winsize};

/// Errors of the console.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// a pty step failed
    #[error("console: {what}")]
    Step {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// the console socket refused the master
    #[error("console socket {}", path.display())]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn step(what: &'static str) -> impl FnOnce(rustix::io::Errno) -> Error {
    move |e| Error::Step {
        what,
        source: e.into(),
    }
}

/// Open a new pty from `/dev/ptmx` (the container's, after pivot); returns
/// the master and the slave's path.
pub fn open_pty(size: Option<(u16, u16)>) -> Result<(OwnedFd, PathBuf), Error> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .map_err(step("open /dev/ptmx"))?;
    rustix::pty::grantpt(&master).map_err(step("grantpt"))?;
    rustix::pty::unlockpt(&master).map_err(step("unlockpt"))?;
    let name = rustix::pty::ptsname(&master, Vec::new()).map_err(step("ptsname"))?;
    if let Some((rows, cols)) = size {
        let ws = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&master, ws).map_err(step("set the window size"))?;
    }
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(name.as_bytes()));
    Ok((master, path))
}

/// Make the slave at `path` our controlling terminal and stdio (after
/// setsid).
pub fn attach_slave(path: &Path) -> Result<(), Error> {
    let slave = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(step("open the pty slave"))?;
    rustix::process::ioctl_tiocsctty(&slave).map_err(step("TIOCSCTTY"))?;
    for target in 0..3 {
        // SAFETY: dup2 onto stdio numbers; the slave stays owned by `slave`.
        let r = unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&slave), target) };
        if r < 0 {
            return Err(Error::Step {
                what: "dup the pty onto stdio",
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

/// Connect to the `--console-socket` and send `master` as runc does.
pub fn send_master(socket: &Path, master: BorrowedFd<'_>) -> Result<(), Error> {
    let err = |source: std::io::Error| Error::Socket {
        path: socket.to_owned(),
        source,
    };
    let stream = std::os::unix::net::UnixStream::connect(socket).map_err(err)?;
    let fds = [master];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    let name = b"/dev/ptmx";
    rustix::net::sendmsg(
        &stream,
        &[IoSlice::new(name)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map_err(|e| err(e.into()))?;
    Ok(())
}

/// Our own terminal in raw mode, restored on drop.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Put stdin in raw mode when it is a terminal.
    pub fn enter() -> Option<Self> {
        let stdin = rustix::stdio::stdin();
        if !rustix::termios::isatty(stdin) {
            return None;
        }
        let saved = rustix::termios::tcgetattr(stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(stdin, OptionalActions::Now, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ =
            rustix::termios::tcsetattr(rustix::stdio::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// Copy the window size of our stdin's terminal to `master` (if any).
pub fn copy_winsize(master: BorrowedFd<'_>) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(rustix::stdio::stdin()) {
        let _ = rustix::termios::tcsetwinsize(master, ws);
    }
}
