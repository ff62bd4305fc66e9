//! Path resolution confined to the container's root filesystem.
//!
//! Every lookup is an `openat2(root, path, RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)`: `..` and absolute symlinks stop at the rootfs, and
//! `/proc/*/fd`-style magic links are refused. Missing components are created
//! one at a time under the fd of their (already resolved) parent, and reopened
//! from that parent without following symlinks, so a racing symlink swap can
//! make a step fail but never point it outside the root. Callers mount onto
//! the returned `O_PATH` fd, never onto a path.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use std::os::unix::ffi::OsStrExt;

use rustix::fs::{fstat, mkdirat, openat, readlinkat, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

/// What to create when the final component is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
}

/// An open directory that lookups cannot escape.
#[derive(Debug)]
pub(crate) struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// The flags of every confined lookup.
fn in_root() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// `path` made relative and lexically clean: no `.`, `..` resolved against
/// the root (so it cannot climb above it), no leading `/`.
pub(crate) fn clean(path: &Path) -> PathBuf {
    let mut out: Vec<&OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out.iter().collect()
}

impl Root {
    /// Open `path` (a host path, followed as given) as the root of lookups.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The root directory itself.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// How `path` (container-absolute) reads in messages: the host path.
    pub(crate) fn show(&self, path: &Path) -> PathBuf {
        self.path.join(clean(path))
    }

    /// Open an existing `path` inside the root as `O_PATH`. With `nofollow`,
    /// a final symlink is opened itself instead of being followed.
    pub(crate) fn open_path(&self, path: &Path, nofollow: bool) -> io::Result<OwnedFd> {
        let rel = clean(path);
        let mut flags = OFlags::PATH | OFlags::CLOEXEC;
        if nofollow {
            flags |= OFlags::NOFOLLOW;
        }
        let target: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &rel
        };
        Ok(openat2(
            self.fd.as_fd(),
            target,
            flags,
            Mode::empty(),
            in_root(),
        )?)
    }

    /// Open `path` inside the root, creating missing directories (mode 0755)
    /// and, when `kind` is `File`, a missing final empty file (mode 0644).
    /// Existing symlinks are followed inside the root; a dangling one is
    /// followed too: what it names is created inside the root.
    pub(crate) fn ensure(&self, path: &Path, kind: Kind) -> io::Result<OwnedFd> {
        let mut path = clean(path);
        for _ in 0..MAX_SYMLINKS {
            match self.ensure_once(&path, kind)? {
                Walk::Done(fd) => return Ok(fd),
                Walk::Dangling(next) => path = next,
            }
        }
        Err(io::Error::other(format!(
            "{}: too many levels of symbolic links",
            self.show(&path).display()
        )))
    }

    fn ensure_once(&self, rel: &Path, kind: Kind) -> io::Result<Walk> {
        let names: Vec<&OsStr> = rel.iter().collect();
        // The last component opened; `None` is the root itself.
        let mut parent: Option<OwnedFd> = None;
        for (i, name) in names.iter().enumerate() {
            let dir = parent.as_ref().map_or(self.fd.as_fd(), AsFd::as_fd);
            let last = i + 1 == names.len();
            let prefix: PathBuf = names[..=i].iter().collect();
            match self.open_path(&prefix, false) {
                Ok(fd) => {
                    if !last && file_type(&fd)? != FileType::Directory {
                        return Err(io::Error::other(format!(
                            "{} is not a directory",
                            self.show(&prefix).display()
                        )));
                    }
                    parent = Some(fd);
                }
                // What `create_child` returns was checked to be of type `want`.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    let want = if last { kind } else { Kind::Dir };
                    match create_child(dir, name, want) {
                        Ok(fd) => parent = Some(fd),
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                            let Ok(target) = readlinkat(dir, *name, Vec::new()) else {
                                return Err(io::Error::other(format!(
                                    "{} appeared while being created",
                                    self.show(&prefix).display()
                                )));
                            };
                            let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                            let base = if target.is_absolute() {
                                PathBuf::new()
                            } else {
                                names[..i].iter().collect()
                            };
                            let rest: PathBuf = names[i + 1..].iter().collect();
                            return Ok(Walk::Dangling(clean(&base.join(target).join(rest))));
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        match parent {
            Some(fd) => Ok(Walk::Done(fd)),
            None => self.open_path(Path::new("."), false).map(Walk::Done),
        }
    }
}

/// How far one walk got.
enum Walk {
    Done(OwnedFd),
    /// a dangling symlink was met: walk this path instead
    Dangling(PathBuf),
}

/// As the kernel's limit on nested symlinks.
const MAX_SYMLINKS: usize = 40;

/// Create `name` under `parent` and open what was created without following
/// anything, so a swap between the two steps fails instead of escaping.
fn create_child(parent: BorrowedFd<'_>, name: &OsStr, kind: Kind) -> io::Result<OwnedFd> {
    match kind {
        Kind::Dir => mkdirat(parent, name, Mode::from_raw_mode(0o755))?,
        Kind::File => {
            openat(
                parent,
                name,
                OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )?;
        }
    }
    let fd = openat2(
        parent,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV,
    )?;
    let got = file_type(&fd)?;
    let want = if kind == Kind::Dir {
        FileType::Directory
    } else {
        FileType::RegularFile
    };
    if got != want {
        return Err(Errno::EXIST.into());
    }
    Ok(fd)
}

/// `fstat` of an fd.
pub(crate) fn stat(fd: &OwnedFd) -> io::Result<Stat> {
    Ok(fstat(fd)?)
}

/// The type of the file an fd refers to.
pub(crate) fn file_type(fd: &OwnedFd) -> io::Result<FileType> {
    Ok(FileType::from_raw_mode(stat(fd)?.st_mode))
}

/// `openat2`, repeated while the kernel answers `EAGAIN`: with
/// `RESOLVE_IN_ROOT`/`RESOLVE_BENEATH`, a `..` met while any rename or mount
/// happens on the system makes the kernel give up rather than risk an escape
/// (openat2(2) asks the caller to retry). Lookups have no side effects.
fn openat2<Fd: AsFd, P: rustix::path::Arg + Copy>(
    dir: Fd,
    path: P,
    flags: OFlags,
    mode: Mode,
    resolve: ResolveFlags,
) -> rustix::io::Result<OwnedFd> {
    let dir = dir.as_fd();
    let mut tries = 1;
    loop {
        match rustix::fs::openat2(dir, path, flags, mode, resolve) {
            Err(Errno::AGAIN) if tries < 128 => tries += 1,
            r => return r,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn clean_never_climbs_above_the_root() {
        assert_eq!(clean(Path::new("/a/../../../b")), PathBuf::from("b"));
        assert_eq!(
            clean(Path::new("../../etc/./passwd")),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(clean(Path::new("/")), PathBuf::from(""));
    }

    /// A `..` lookup racing renames elsewhere gets EAGAIN from the kernel
    /// now and then; keel retries, so the lookup never fails for it.
    #[test]
    fn lookups_with_dotdot_survive_concurrent_renames() {
        let dir = berth_testkit::TempDir::new().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink("../../a/b", root.join("a/b/up")).unwrap();
        let churn = dir.path().join("churn");
        std::fs::write(&churn, "").unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let renamer = {
            let (stop, from, to) = (stop.clone(), churn.clone(), dir.path().join("churn2"));
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::fs::rename(&from, &to);
                    let _ = std::fs::rename(&to, &from);
                }
            })
        };
        let r = Root::open(&root).unwrap();
        let mut failures = Vec::new();
        for _ in 0..20_000 {
            if let Err(e) = r.open_path(Path::new("a/b/up/up/up"), false) {
                failures.push(e.to_string());
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        renamer.join().unwrap();
        assert!(
            failures.is_empty(),
            "{} lookups failed: {:?}",
            failures.len(),
            failures.first()
        );
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = berth_testkit::TempDir::new().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        std::os::unix::fs::symlink("../../../../outside", root.join("rel")).unwrap();
        let r = Root::open(&root).unwrap();
        // An absolute symlink to "/" stays at the rootfs.
        let fd = r.ensure(Path::new("/up/real"), Kind::Dir).unwrap();
        assert_eq!(
            stat(&fd).unwrap().st_ino,
            std::fs::metadata(root.join("real")).unwrap().ino()
        );
        // A dangling relative symlink climbing out is followed inside the root.
        r.ensure(Path::new("/rel/x"), Kind::Dir).unwrap();
        assert!(!dir.path().join("outside").exists());
        assert!(root.join("outside/x").is_dir());
        // A symlink loop ends.
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(r.ensure(Path::new("/loop/x"), Kind::Dir).is_err());
        // Through it, created components land inside the root.
        r.ensure(Path::new("/up/new/deep"), Kind::File).unwrap();
        assert!(root.join("new/deep").is_file());
        // Magic links are refused.
        assert!(r.open_path(Path::new("/proc/self/root"), false).is_err());
    }

    use std::os::unix::fs::MetadataExt;
}
