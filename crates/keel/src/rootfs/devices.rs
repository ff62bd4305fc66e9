//! /dev inside the container: the default devices, `linux.devices`, and the
//! usual links (`fd`, `std*`, `ptmx` → `pts/ptmx`, `core`).
//!
//! Devices are `mknod`ed, or, inside a user namespace (where mknod is not
//! allowed), bind-mounted from the host's node of the same path.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use rustix::fs::{chownat, mknodat, symlinkat, unlinkat, AtFlags, FileType, Gid, Mode, Uid};
use rustix::io::Errno;

use super::resolve::{Kind, Root};
use super::{sys, Error};

/// One device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub path: PathBuf,
    pub kind: FileType,
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// null, zero, full, random, urandom, tty: what every container gets.
pub(crate) fn defaults() -> Vec<Node> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| Node {
        path: Path::new("/dev").join(name),
        kind: FileType::CharacterDevice,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// A `linux.devices` entry as a node.
pub(crate) fn from_spec(d: &LinuxDevice) -> Result<Node, Error> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => FileType::CharacterDevice,
        LinuxDeviceType::B => FileType::BlockDevice,
        LinuxDeviceType::P => FileType::Fifo,
        LinuxDeviceType::A => {
            return Err(Error::Refused {
                what: format!(
                    "device {}: type \"a\" is not a device node type",
                    d.path().display()
                ),
            })
        }
    };
    let (Ok(major), Ok(minor)) = (u32::try_from(d.major()), u32::try_from(d.minor())) else {
        return Err(Error::Refused {
            what: format!("device {}: major/minor out of range", d.path().display()),
        });
    };
    if !d.path().is_absolute() {
        return Err(Error::Refused {
            what: format!("device {}: path must be absolute", d.path().display()),
        });
    }
    Ok(Node {
        path: d.path().clone(),
        kind,
        major,
        minor,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Create `nodes`, then the links. `userns`: bind from the host instead of mknod.
pub(crate) fn create(root: &Root, nodes: &[Node], userns: bool) -> Result<(), Error> {
    for n in nodes {
        let fail = |step: &str| {
            let what = format!("device {}: {step}", n.path.display());
            move |source: io::Error| Error::Step { what, source }
        };
        if userns {
            bind_host(root, n).map_err(fail("bind from the host"))?;
        } else {
            mknod(root, n).map_err(fail("mknod"))?;
        }
    }
    Ok(())
}

/// The parent directory fd and file name of `path` inside the root.
fn parent_of(root: &Root, path: &Path) -> io::Result<(OwnedFd, PathBuf)> {
    let clean = super::resolve::clean(path);
    let name = clean
        .file_name()
        .ok_or_else(|| io::Error::other("no file name"))?;
    let dir = root.ensure(clean.parent().unwrap_or(Path::new("")), Kind::Dir)?;
    Ok((dir, PathBuf::from(name)))
}

/// `mknod` the node (an existing one is left alone), then owner and mode.
fn mknod(root: &Root, n: &Node) -> io::Result<()> {
    let (dir, name) = parent_of(root, &n.path)?;
    let dev = rustix::fs::makedev(n.major, n.minor);
    match mknodat(&dir, &name, n.kind, Mode::from_raw_mode(n.mode), dev) {
        Ok(()) => {}
        Err(Errno::EXIST) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    chownat(
        &dir,
        &name,
        Some(Uid::from_raw(n.uid)),
        Some(Gid::from_raw(n.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    // mknod applied the umask: set the mode exactly. The node was just made
    // by us in a directory we resolved, and is not a symlink.
    rustix::fs::chmodat(&dir, &name, Mode::from_raw_mode(n.mode), AtFlags::empty())?;
    Ok(())
}

/// Bind the host's node at the same path onto an empty file.
fn bind_host(root: &Root, n: &Node) -> io::Result<()> {
    let src = rustix::fs::open(
        &n.path,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let dest = root.ensure(&n.path, Kind::File)?;
    let mnt = sys::clone_tree(src.as_fd(), false)?;
    sys::attach(mnt.as_fd(), dest.as_fd())
}

/// Whether the container's /dev is the host's /dev itself (same inode).
pub(crate) fn is_host_dev(root: &Root) -> bool {
    let Ok(fd) = root.open_path(Path::new("/dev"), false) else {
        return false;
    };
    match (super::resolve::stat(&fd), rustix::fs::stat("/dev")) {
        (Ok(c), Ok(h)) => c.st_dev == h.st_dev && c.st_ino == h.st_ino,
        _ => false,
    }
}

/// `/dev/fd`, `/dev/std{in,out,err}`, `/dev/core` (when the host has
/// /proc/kcore) and `/dev/ptmx` → `pts/ptmx`.
pub(crate) fn links(root: &Root) -> Result<(), Error> {
    let fail = |what: &str| {
        let what = format!("/dev/{what}");
        move |source: io::Error| Error::Step { what, source }
    };
    let dev = root
        .ensure(Path::new("/dev"), Kind::Dir)
        .map_err(fail(""))?;
    let mut table = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        table.push(("/proc/kcore", "core"));
    }
    for (target, name) in table {
        match symlinkat(target, &dev, name) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(fail(name)(e.into())),
        }
    }
    match unlinkat(&dev, "ptmx", AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(fail("ptmx")(e.into())),
    }
    symlinkat("pts/ptmx", &dev, "ptmx").map_err(|e| fail("ptmx")(e.into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spec_devices_become_nodes() {
        let d: LinuxDevice = serde_json::from_value(serde_json::json!({
            "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o20600, "uid": 7
        }))
        .unwrap();
        let n = from_spec(&d).unwrap();
        assert_eq!(
            (n.kind, n.major, n.minor, n.mode, n.uid, n.gid),
            (FileType::CharacterDevice, 10, 229, 0o600, 7, 0)
        );
        let bad: LinuxDevice = serde_json::from_value(serde_json::json!({
            "path": "/dev/x", "type": "a"
        }))
        .unwrap();
        assert!(from_spec(&bad).is_err());
        assert_eq!(defaults().len(), 6);
    }
}
