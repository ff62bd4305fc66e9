//! cgroup v1 and v2 managers: create, apply `linux.resources`, freeze, kill,
//! stats, delete. Used by keel (and later by berthd for its own accounting).
//!
//! `cgroupsPath` semantics follow runc's cgroupfs driver: an absolute path is
//! taken relative to each hierarchy's root; a relative path is relative to the
//! runtime's own cgroup; an empty path defaults to `/<container id>`.
//!
//! OWNER: cgroups work. The public API below is the contract with keel.

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;

/// Errors from cgroup management.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// a cgroup file or directory operation failed
    #[error("{what}: {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Which cgroup layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// v1 controllers (possibly with a v2 mount beside them: hybrid)
    Legacy,
    /// pure cgroup v2 at /sys/fs/cgroup
    Unified,
}

/// One container's cgroup(s). Serializable so the runtime can keep it in its
/// state file and re-open it in later commands.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manager {
    _todo: (),
}

/// Resource usage, shaped like runc's `events --stats` "data" object.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Stats {}

impl Manager {
    /// Resolve `cgroups_path` (runc semantics) for container `id` on this host.
    /// Creates nothing.
    pub fn new(cgroups_path: Option<&str>, id: &str) -> Result<Self, Error> {
        let _ = (cgroups_path, id);
        Ok(Self { _todo: () })
    }
    /// The host's layout.
    pub fn mode(&self) -> Mode {
        Mode::Legacy
    }
    /// Create the cgroup directories (every v1 hierarchy, or the v2 dir with
    /// the needed controllers enabled in the parents' subtree_control).
    pub fn create(&self) -> Result<(), Error> {
        Ok(())
    }
    /// Apply `linux.resources` (used at create and by `update`).
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), Error> {
        let _ = resources;
        Ok(())
    }
    /// Move `pid` into the cgroup(s).
    pub fn add_pid(&self, pid: i32) -> Result<(), Error> {
        let _ = pid;
        Ok(())
    }
    /// On v2, an O_DIRECTORY fd of the cgroup for clone3(CLONE_INTO_CGROUP).
    pub fn open_v2_dir(&self) -> Result<Option<std::os::fd::OwnedFd>, Error> {
        Ok(None)
    }
    /// Freeze every process (pause).
    pub fn freeze(&self) -> Result<(), Error> {
        Ok(())
    }
    /// Thaw (resume).
    pub fn thaw(&self) -> Result<(), Error> {
        Ok(())
    }
    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> Result<bool, Error> {
        Ok(false)
    }
    /// Pids in the cgroup (recursive).
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        Ok(Vec::new())
    }
    /// Send `signal` to every process in the cgroup (thawing as needed so it
    /// is delivered).
    pub fn kill_all(&self, signal: i32) -> Result<(), Error> {
        let _ = signal;
        Ok(())
    }
    /// Current usage.
    pub fn stats(&self) -> Result<Stats, Error> {
        Ok(Stats::default())
    }
    /// Number of OOM kills seen so far (for `events` "oom").
    pub fn oom_kill_count(&self) -> Result<u64, Error> {
        Ok(0)
    }
    /// Remove the (now empty) cgroup directories; missing ones are fine.
    pub fn delete(&self) -> Result<(), Error> {
        Ok(())
    }
}
