//! runc's `tmpcopyup`: a new tmpfs starts as a copy of the directory it is
//! about to cover. The copy is made into the detached mount, before attach,
//! and never follows a symlink of the source.

use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::{
    chownat, mkdirat, mknodat, openat, readlinkat, statat, symlinkat, AtFlags, Dir, FileType, Gid,
    Mode, OFlags, Uid,
};

/// Copy the contents of directory `from` (any fd of it) into `to`.
pub(crate) fn copy_dir(from: &OwnedFd, to: &OwnedFd) -> io::Result<()> {
    let listing = openat(
        from,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for entry in Dir::read_from(&listing)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        copy_entry(from, to, name)?;
    }
    Ok(())
}

/// Copy one entry: a directory recursively, a file's bytes, a symlink's
/// target, a device or fifo node; sockets are skipped. Owner and mode kept.
fn copy_entry(from: &OwnedFd, to: &OwnedFd, name: &std::ffi::CStr) -> io::Result<()> {
    let st = statat(from, name, AtFlags::SYMLINK_NOFOLLOW)?;
    let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            mkdirat(to, name, mode)?;
            let nofollow_dir =
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let sub_from = openat(from, name, nofollow_dir, Mode::empty())?;
            let sub_to = openat(to, name, nofollow_dir, Mode::empty())?;
            copy_dir(&sub_from, &sub_to)?;
        }
        FileType::RegularFile => {
            let src = openat(
                from,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let dst = openat(
                to,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                mode,
            )?;
            io::copy(&mut std::fs::File::from(src), &mut std::fs::File::from(dst))?;
        }
        FileType::Symlink => {
            let target = readlinkat(from, name, Vec::new())?;
            symlinkat(target.as_c_str(), to, name)?;
        }
        kind @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
            mknodat(to, name, kind, mode, st.st_rdev)?;
        }
        _ => return Ok(()),
    }
    chownat(
        to,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
        // creation applied the umask; the chown may have cleared set-id bits
        rustix::fs::chmodat(to, name, mode, AtFlags::empty())?;
    }
    Ok(())
}
