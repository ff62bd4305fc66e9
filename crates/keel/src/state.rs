//! The state directory: `<root>/<id>/` holding `state.json` (our persisted
//! schema, versioned) and, between `create` and `start`, `exec.fifo`.
//!
//! Every command on one container holds an exclusive `flock` on the
//! container's directory for its whole run, so commands on one container are
//! serialised. `state.json` is replaced atomically (temp file, rename; see
//! [`ContainerDir::write`] for why there is no fsync).
//!
//! Schema (version 1): see [`State`]. A change to it bumps
//! [`SCHEMA_VERSION`] and teaches [`ContainerDir::read`] the old shape.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use rustix::fs::{flock, FlockOperation, Mode, OFlags};

/// Version of the `state.json` schema written by this keel.
pub const SCHEMA_VERSION: u32 = 1;
/// The state file inside a container's directory.
pub const STATE_FILE: &str = "state.json";
/// The fifo `start` opens to release the container's init.
pub const FIFO: &str = "exec.fifo";

/// Errors of the state directory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// the id is not acceptable
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.' (not \".\" or \"..\")")]
    InvalidId(String),
    /// the id is already taken
    #[error("container {0:?} already exists")]
    Exists(String),
    /// the id is unknown
    #[error("container {0:?} does not exist")]
    NotFound(String),
    /// reading or writing the state failed
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// state.json is not ours or is damaged
    #[error("{}: damaged state file", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Where the container stands in its life, as recorded by keel (the live
/// status also looks at the process and the freezer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// `create` is running (or crashed)
    Creating,
    /// init waits for `start`
    Created,
    /// `start` released init
    Running,
}

/// What keel remembers about one container.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// schema version ([`SCHEMA_VERSION`])
    pub version: u32,
    pub id: String,
    /// init's pid on the host, 0 before it exists
    pub pid: i32,
    /// init's start time (field 22 of /proc/pid/stat), to detect pid reuse
    pub pid_start: u64,
    pub phase: Phase,
    pub bundle: PathBuf,
    /// absolute host path of the root filesystem
    pub rootfs: PathBuf,
    /// RFC 3339 creation time
    pub created: String,
    /// owner (empty, as runc writes it for root)
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// the container's cgroup(s), once resolved
    pub cgroup: Option<berth_cgroups::Manager>,
    /// the container's resctrl group (`linux.intelRdt`)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdt: Option<crate::rdt::Group>,
    /// the configuration the container was created from
    pub spec: Spec,
}

/// The root of all state directories (`--root`).
#[derive(Debug, Clone)]
pub struct Root {
    path: PathBuf,
}

/// One container's directory, locked for as long as this value lives.
#[derive(Debug)]
pub struct ContainerDir {
    id: String,
    path: PathBuf,
    _lock: OwnedFd,
}

/// Accept ids runc accepts: `[A-Za-z0-9_+.-]+`, not `.` or `..`, ≤ 1024 bytes.
pub fn validate_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_owned()))
    }
}

impl Root {
    /// The state root at `path` (created on first `create`).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The root path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Make `<root>/<id>` (refusing a duplicate id) and lock it.
    pub fn create(&self, id: &str) -> Result<ContainerDir, Error> {
        validate_id(id)?;
        let io = |what, path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { what, path, source }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.path)
            .map_err(io("cannot create state root", &self.path))?;
        let path = self.path.join(id);
        match std::fs::DirBuilder::new().mode(0o711).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.to_owned()))
            }
            Err(e) => return Err(io("cannot create state dir", &path)(e)),
        }
        let lock = lock_dir(&path).map_err(io("cannot lock state dir", &path))?;
        Ok(ContainerDir {
            id: id.to_owned(),
            path,
            _lock: lock,
        })
    }

    /// Lock the existing `<root>/<id>`.
    pub fn open(&self, id: &str) -> Result<ContainerDir, Error> {
        validate_id(id)?;
        let path = self.path.join(id);
        let lock = match lock_dir(&path) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_owned()))
            }
            Err(source) => {
                return Err(Error::Io {
                    what: "cannot lock state dir",
                    path,
                    source,
                })
            }
        };
        // A concurrent delete may have removed the directory while we waited.
        let st = rustix::fs::fstat(&lock).map_err(|e| Error::Io {
            what: "cannot stat state dir",
            path: path.clone(),
            source: e.into(),
        })?;
        if st.st_nlink == 0 {
            return Err(Error::NotFound(id.to_owned()));
        }
        Ok(ContainerDir {
            id: id.to_owned(),
            path,
            _lock: lock,
        })
    }

    /// The ids with a state directory, sorted.
    pub fn list(&self) -> Result<Vec<String>, Error> {
        let rd = match std::fs::read_dir(&self.path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    what: "cannot read state root",
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn lock_dir(path: &Path) -> std::io::Result<OwnedFd> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    flock(&fd, FlockOperation::LockExclusive)?;
    Ok(fd)
}

impl ContainerDir {
    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The directory path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Path of `exec.fifo`.
    pub fn fifo(&self) -> PathBuf {
        self.path.join(FIFO)
    }

    /// The lock's fd (the child of `create` closes its copy at once).
    pub fn lock_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self._lock.as_fd()
    }

    /// Read `state.json`; `Ok(None)` when a crashed create left none.
    pub fn read(&self) -> Result<Option<State>, Error> {
        let path = self.path.join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Io {
                    what: "cannot read",
                    path,
                    source,
                })
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::Corrupt { path, source })
    }

    /// Read `state.json`, treating a missing one as "does not exist".
    pub fn load(&self) -> Result<State, Error> {
        self.read()?.ok_or_else(|| Error::NotFound(self.id.clone()))
    }

    /// Replace `state.json` atomically: write a temp file, rename it over.
    ///
    /// Readers and a keel killed mid-write never see a torn file (the rename
    /// is atomic). There is deliberately no fsync: it cost ~4 ms per write
    /// on this ext4 `/run` (and made the later unlink slower), a third of a
    /// whole `run`, and buys nothing — the state only describes processes
    /// and cgroups that a power loss or reboot destroys anyway. A file left
    /// empty by a crash reads as damaged, and `delete --force` removes it.
    pub fn write(&self, state: &State) -> Result<(), Error> {
        let tmp = self.path.join(".state.json.tmp");
        let dst = self.path.join(STATE_FILE);
        let io = |what, path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { what, path, source }
        };
        let bytes = serde_json::to_vec(state).map_err(|source| Error::Corrupt {
            path: dst.clone(),
            source,
        })?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io("cannot write", &tmp))?;
        f.write_all(&bytes).map_err(io("cannot write", &tmp))?;
        std::fs::rename(&tmp, &dst).map_err(io("cannot rename", &dst))
    }

    /// Remove the directory and everything in it (the lock goes with it).
    pub fn remove(self) -> Result<(), Error> {
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io {
                what: "cannot remove state dir",
                path: self.path.clone(),
                source,
            }),
        }
    }
}

/// Field 22 (starttime) of `/proc/<pid>/stat`, `None` when the pid is gone.
pub fn pid_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm (field 2) may contain spaces and parentheses: skip past the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    // rest starts at field 3 (state); starttime is field 22.
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-DEF_1.2+3", "x".repeat(1024).as_str()] {
            validate_id(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a b",
            "é",
            "x".repeat(1025).as_str(),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn create_lock_and_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path().join("r"));
        let c = root.create("c1").unwrap();
        assert!(matches!(root.create("c1"), Err(Error::Exists(_))));
        assert!(c.read().unwrap().is_none());
        assert_eq!(root.list().unwrap(), vec!["c1".to_owned()]);
        c.remove().unwrap();
        assert!(matches!(root.open("c1"), Err(Error::NotFound(_))));
    }

    #[test]
    fn own_start_time() {
        let me = std::process::id() as i32;
        assert!(pid_start_time(me).is_some());
        assert!(pid_start_time(0).is_none());
    }
}
