//! Thin wrappers over the kernel's fd-based mount API (`open_tree`,
//! `fsopen`/`fsmount`, `move_mount`, `mount_setattr`): a mount is built
//! detached, configured, and only then attached to a destination that is
//! already open, so no path is looked up twice.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    open_tree, FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};

/// `MOUNT_ATTR_*` bits to set and clear on a mount, plus a propagation type
/// (`MS_SHARED`, `MS_SLAVE`, `MS_PRIVATE` or `MS_UNBINDABLE`; 0 keeps it).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attrs {
    pub set: u64,
    pub clr: u64,
    pub propagation: u64,
}

impl Attrs {
    pub(crate) fn is_empty(&self) -> bool {
        self.set == 0 && self.clr == 0 && self.propagation == 0
    }
}

/// The kernel's `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const EMPTY: &CStr = c"";

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], attrs)`; with
/// `userns`, the mount becomes idmapped through that user namespace.
pub(crate) fn setattr(
    mnt: BorrowedFd<'_>,
    recursive: bool,
    attrs: Attrs,
    userns: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let mut attr = MountAttr {
        attr_set: attrs.set,
        attr_clr: attrs.clr,
        propagation: attrs.propagation,
        userns_fd: 0,
    };
    if let Some(ns) = userns {
        attr.attr_set |= u64::from(MountAttrFlags::MOUNT_ATTR_IDMAP.bits());
        attr.userns_fd = ns.as_raw_fd() as u64;
    }
    // SAFETY: the fd is valid for the call, the path is a NUL-terminated empty
    // string, and `attr` is a live `struct mount_attr` whose size we pass.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mnt.as_raw_fd(),
            EMPTY.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A detached copy of the mount (tree, when `recursive`) at `src`.
pub(crate) fn clone_tree(src: BorrowedFd<'_>, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_EMPTY_PATH;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    Ok(open_tree(src, EMPTY, flags)?)
}

/// Which step of creating a filesystem failed, and why.
#[derive(Debug)]
pub(crate) struct FsError {
    pub step: String,
    pub source: io::Error,
}

impl From<FsError> for io::Error {
    fn from(e: FsError) -> Self {
        e.source
    }
}

/// A new, detached filesystem instance of `fstype`, configured with
/// `options` (`key=value` strings or bare flags) and mount attributes `attrs`.
pub(crate) fn new_fs(
    fstype: &str,
    source: &str,
    options: &[String],
    attrs: u64,
) -> Result<OwnedFd, FsError> {
    let at = |step: String| {
        move |e: rustix::io::Errno| FsError {
            step,
            source: e.into(),
        }
    };
    let fs = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(at(format!("unknown filesystem type {fstype:?}")))?;
    if !source.is_empty() {
        fsconfig_set_string(fs.as_fd(), "source", source)
            .map_err(at(format!("source {source:?}")))?;
    }
    for opt in options {
        match opt.split_once('=') {
            Some((key, value)) => fsconfig_set_string(fs.as_fd(), key, value),
            None => fsconfig_set_flag(fs.as_fd(), opt.as_str()),
        }
        .map_err(at(format!("option {opt:?}")))?;
    }
    fsconfig_create(fs.as_fd()).map_err(at(format!("create the {fstype} filesystem")))?;
    fsmount(
        fs.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::from_bits_retain(attrs as u32),
    )
    .map_err(at(format!("mount the {fstype} filesystem")))
}

/// Attach the detached mount `mnt` onto the open destination `dest`.
pub(crate) fn attach(mnt: BorrowedFd<'_>, dest: BorrowedFd<'_>) -> io::Result<()> {
    Ok(move_mount(
        mnt,
        EMPTY,
        dest,
        EMPTY,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )?)
}
