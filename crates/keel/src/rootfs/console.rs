//! /dev/console for a container with a terminal: the pty slave bound over
//! it. Both ends are checked on the very fds used for the mount, so a
//! planted symlink cannot redirect the bind (the CVE-2025-52565 class).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::FileType;

use super::resolve::{file_type, stat, Kind, Root};
use super::{sys, Error};

/// Major numbers of Unix98 pty slaves.
const PTY_SLAVE_MAJORS: std::ops::RangeInclusive<u32> = 136..=143;

fn fail(what: &str) -> impl FnOnce(io::Error) -> Error {
    let what = format!("/dev/console: {what}");
    move |source| Error::Step { what, source }
}

/// Bind the pty slave at `slave_path` (inside `root`) over /dev/console.
pub(crate) fn bind(root: &Root, slave_path: &Path) -> Result<(), Error> {
    let slave = root
        .open_path(slave_path, true)
        .map_err(fail("open the pty"))?;
    let st = stat(&slave).map_err(fail("stat the pty"))?;
    let is_pty = FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
        && PTY_SLAVE_MAJORS.contains(&rustix::fs::major(st.st_rdev));
    if !is_pty {
        return Err(Error::Refused {
            what: format!("/dev/console: {} is not a pty", slave_path.display()),
        });
    }
    let dest = console(root)?;
    let mnt = sys::clone_tree(slave.as_fd(), false).map_err(fail("clone the pty"))?;
    sys::attach(mnt.as_fd(), dest.as_fd()).map_err(fail("bind the pty"))
}

/// /dev/console opened as itself (created as an empty file when missing);
/// refused unless it is a regular file or a device.
fn console(root: &Root) -> Result<OwnedFd, Error> {
    let path = Path::new("/dev/console");
    let open = || root.open_path(path, true);
    let fd = match open() {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => root
            .ensure(path, Kind::File)
            .and_then(|_| open())
            .map_err(fail("create"))?,
        other => other.map_err(fail("open"))?,
    };
    match file_type(&fd).map_err(fail("stat"))? {
        FileType::RegularFile | FileType::CharacterDevice => Ok(fd),
        _ => Err(Error::Refused {
            what: "/dev/console exists and is not a file or a device".into(),
        }),
    }
}
