//! `linux.maskedPaths` and `linux.readonlyPaths`, after pivot.
//!
//! Each path is opened inside the new root without following a final symlink
//! or any magic link, and the mask is attached to that exact file: a file gets
//! the container's `/dev/null` (checked to really be the 1:3 character
//! device, so a planted symlink or file cannot be bound in its place), a
//! directory a read-only empty tmpfs. A read-only path is a recursive bind of
//! itself made read-only while detached, then attached over itself. Masks sit
//! on the mount (not the path), so every way to reach the same file —
//! `/proc/self/root/...`, `/proc/1/root/...`, symlinks — sees them.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::FileType;

use super::options::readonly_attrs;
use super::resolve::{file_type, stat, Root};
use super::{sys, Error};

fn fail(kind: &str, path: &str) -> impl FnOnce(io::Error) -> Error {
    let what = format!("{kind} {path}");
    move |source| Error::Step { what, source }
}

/// Open `path` inside `root` as itself (a final symlink is not followed);
/// `None` when it does not exist.
fn open_target(root: &Root, path: &str) -> io::Result<Option<OwnedFd>> {
    match root.open_path(Path::new(path), true) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The container's /dev/null, verified to be the null device.
fn dev_null(root: &Root) -> io::Result<OwnedFd> {
    let fd = root.open_path(Path::new("/dev/null"), true)?;
    let st = stat(&fd)?;
    let is_null = FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
        && rustix::fs::major(st.st_rdev) == 1
        && rustix::fs::minor(st.st_rdev) == 3;
    if !is_null {
        return Err(io::Error::other(
            "/dev/null in the container is not the null device",
        ));
    }
    Ok(fd)
}

/// Mask every path of `linux.maskedPaths`.
pub(crate) fn mask(root: &Root, paths: &[String]) -> Result<(), Error> {
    let mut null: Option<OwnedFd> = None;
    for path in paths {
        let Some(target) = open_target(root, path).map_err(fail("masked path", path))? else {
            continue;
        };
        let ty = file_type(&target).map_err(fail("masked path", path))?;
        if ty == FileType::Symlink {
            // A symlink cannot carry a mount; its target, if listed under its
            // own name, is masked there.
            continue;
        }
        let mnt = if ty == FileType::Directory {
            let ro = readonly_attrs().set;
            sys::new_fs(
                "tmpfs",
                "tmpfs",
                &["ro".to_owned(), "size=0".to_owned()],
                ro,
            )
            .map_err(io::Error::from)
        } else {
            if null.is_none() {
                null = Some(dev_null(root).map_err(fail("masked path", path))?);
            }
            match &null {
                Some(fd) => sys::clone_tree(fd.as_fd(), false),
                None => continue,
            }
        }
        .map_err(fail("mask", path))?;
        sys::attach(mnt.as_fd(), target.as_fd()).map_err(fail("mask", path))?;
    }
    Ok(())
}

/// Make every path of `linux.readonlyPaths` read-only (with its submounts).
pub(crate) fn readonly(root: &Root, paths: &[String]) -> Result<(), Error> {
    for path in paths {
        let Some(target) = open_target(root, path).map_err(fail("read-only path", path))? else {
            continue;
        };
        if file_type(&target).map_err(fail("read-only path", path))? == FileType::Symlink {
            continue;
        }
        let mnt = sys::clone_tree(target.as_fd(), true).map_err(fail("read-only path", path))?;
        sys::setattr(mnt.as_fd(), true, readonly_attrs(), None)
            .map_err(fail("read-only path", path))?;
        sys::attach(mnt.as_fd(), target.as_fd()).map_err(fail("read-only path", path))?;
    }
    Ok(())
}

/// `root.readonly`: the root mount itself becomes read-only.
pub(crate) fn readonly_root(root: &Root) -> Result<(), Error> {
    sys::setattr(root.fd().as_fd(), false, readonly_attrs(), None)
        .map_err(fail("make read-only:", "/ (root.readonly)"))
}
