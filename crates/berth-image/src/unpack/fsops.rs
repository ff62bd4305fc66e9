//! Filesystem operations confined to the layer directory.
//!
//! Every directory is opened relative to the layer root with
//! `openat2(RESOLVE_IN_ROOT)`: `..` and symlinks met on the way (absolute ones
//! included) resolve as if the layer root were `/`, the way Docker's chrooted
//! unpacker sees them, so no path can name anything outside the root. The
//! last component is then created with the `*at` calls on that directory fd,
//! never following it. On kernels without openat2 the walk is done one
//! component at a time with `O_NOFOLLOW`, refusing symlinked parents.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use crate::openat2::openat2;
use rustix::fs::{
    mkdirat, openat, statat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags,
};
use rustix::io::Errno;

/// The layer root and a cache of the last parent directory opened.
pub(super) struct Tree {
    root: OwnedFd,
    have_openat2: bool,
    /// (parent path, its fd): entries of one directory come together in a tar
    cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

impl Tree {
    /// Open the (existing) layer directory.
    pub(super) fn open(dest: &Path) -> std::io::Result<Self> {
        let root = openat(rustix::fs::CWD, dest, DIR_FLAGS, Mode::empty())?;
        let have_openat2 = !matches!(
            openat2(&root, ".", DIR_FLAGS, Mode::empty(), ResolveFlags::IN_ROOT),
            Err(Errno::NOSYS)
        );
        Ok(Self {
            root,
            have_openat2,
            cache: None,
        })
    }

    /// Forget the cached parent: called whenever something is removed, since
    /// a removed or replaced component may change what a path resolves to.
    pub(super) fn invalidate(&mut self) {
        self.cache = None;
    }

    /// Open the directory at `rel` (`/`-joined, relative to the root; empty
    /// means the root), resolving everything inside the root.
    pub(super) fn open_dir(&self, rel: &[u8]) -> Result<OwnedFd, Errno> {
        self.open_dir_with(rel, OFlags::empty())
    }

    /// Like [`Tree::open_dir`], but the last component must not be a symlink.
    pub(super) fn open_dir_nofollow(&self, rel: &[u8]) -> Result<OwnedFd, Errno> {
        self.open_dir_with(rel, OFlags::NOFOLLOW)
    }

    fn open_dir_with(&self, rel: &[u8], extra: OFlags) -> Result<OwnedFd, Errno> {
        if rel.is_empty() {
            return rustix::io::dup(&self.root);
        }
        if self.have_openat2 {
            let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
            return openat2(&self.root, rel, DIR_FLAGS | extra, Mode::empty(), resolve);
        }
        let mut fd = rustix::io::dup(&self.root)?;
        for part in rel.split(|b| *b == b'/') {
            fd = openat(&fd, part, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())?;
        }
        Ok(fd)
    }

    /// The parent directory of an entry, creating missing directories (mode
    /// 0755, as Docker does) on the way. Shared with the cache.
    pub(super) fn parent(&mut self, rel: &[u8], parts: &[Vec<u8>]) -> Result<Rc<OwnedFd>, Errno> {
        if let Some((p, fd)) = &self.cache {
            if p.as_slice() == rel {
                return Ok(fd.clone());
            }
        }
        let fd = Rc::new(match self.open_dir(rel) {
            Err(Errno::NOENT) => self.make_parents(parts)?,
            other => other?,
        });
        self.cache = Some((rel.to_vec(), fd.clone()));
        Ok(fd)
    }

    fn make_parents(&self, parts: &[Vec<u8>]) -> Result<OwnedFd, Errno> {
        let mut fd = rustix::io::dup(&self.root)?;
        let mut prefix = Vec::new();
        for part in parts {
            if !prefix.is_empty() {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(part);
            match mkdirat(&fd, part.as_slice(), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e),
            }
            fd = self.open_dir(&prefix)?;
        }
        Ok(fd)
    }
}

/// What sits at `name` in `dir`, if anything (never following a symlink).
pub(super) fn existing(dir: BorrowedFd<'_>, name: &[u8]) -> Result<Option<FileType>, Errno> {
    match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Remove `name` from `dir` whatever it is; directories are removed with
/// their contents, without following any symlink inside.
pub(super) fn remove_all(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    match unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(e) => return Err(e),
    }
    let sub = openat(dir, name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())?;
    let mut names = Vec::new();
    for entry in Dir::read_from(&sub)? {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    for n in names {
        remove_all(sub.as_fd(), &n)?;
    }
    unlinkat(dir, name, AtFlags::REMOVEDIR)
}
