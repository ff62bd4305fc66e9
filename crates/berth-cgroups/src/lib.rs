//! cgroup v1 and v2 managers: create, apply `linux.resources`, freeze, kill,
//! stats, delete. Used by keel (and later by berthd for its own accounting).
//!
//! `cgroupsPath` semantics follow runc's cgroupfs driver (see [`path`]): an
//! absolute path is taken relative to each hierarchy's root; a relative path
//! is relative to the runtime's own cgroup; an empty path is the relative
//! path `<container id>`. docs/cgroups.md has the whole story.
//!
//! OWNER: cgroups work. The public API below is the contract with keel.

mod devices;
mod error;
mod files;
mod freezer;
mod layout;
pub mod path;
mod resources;
mod stats;
mod v1;
mod v2;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Mutex;

use oci_spec::runtime::LinuxResources;

pub use devices::{
    allow_rules_for, ebpf, Kind as DeviceKind, Rule as DeviceRule, ACC_ALL, ACC_MKNOD, ACC_READ,
    ACC_WRITE, DEFAULT_ALLOWED,
};
pub use error::{Error, Result};
pub use layout::{Layout, CGROUP_ROOT};
pub use resources::{blkio_weight_to_io_weight, shares_to_weight};
pub use stats::{
    Blkio, BlkioEntry, Cpu, CpuUsage, Hugetlb, Memory, MemoryEntry, Pids, Stats, Throttling,
};

/// Which cgroup layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// v1 controllers (possibly with a v2 mount beside them: hybrid)
    Legacy,
    /// pure cgroup v2 at /sys/fs/cgroup
    Unified,
}

/// How to read `cgroupsPath`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// `--systemd-cgroup`: `cgroupsPath` is `slice:prefix:name`. There is no
    /// systemd driver yet: the path is mapped onto cgroupfs directories.
    pub systemd: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum Driver {
    V1(v1::V1),
    V2(v2::V2),
}

/// One container's cgroup(s). Serializable so the runtime can keep it in its
/// state file and re-open it in later commands.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Manager {
    layout: Layout,
    driver: Driver,
    /// directories `create` made (outermost first), so `delete` can remove
    /// the parents it added too
    #[serde(default)]
    created: Mutex<Vec<PathBuf>>,
}

impl Clone for Manager {
    fn clone(&self) -> Self {
        Manager {
            layout: self.layout,
            driver: self.driver.clone(),
            created: Mutex::new(self.created_dirs()),
        }
    }
}

impl Manager {
    /// Resolve `cgroups_path` (runc semantics) for container `id` on this host.
    /// Creates nothing.
    pub fn new(cgroups_path: Option<&str>, id: &str) -> Result<Self, Error> {
        Self::with_options(cgroups_path, id, Options::default())
    }

    /// [`Manager::new`] with options (`--systemd-cgroup`).
    pub fn with_options(
        cgroups_path: Option<&str>,
        id: &str,
        opts: Options,
    ) -> Result<Self, Error> {
        let inner = path::resolve_inner(cgroups_path, id, opts.systemd)?;
        let host = layout::Host::detect()?;
        let unified = host.unified_mount();
        let driver = match (host.layout, unified) {
            (Layout::Unified, Some(mount)) => Driver::V2(v2::V2 {
                dir: path::v2_dir(&host, &mount, &inner),
                mount,
            }),
            (_, unified) => Driver::V1(v1::V1 {
                dirs: path::v1_dirs(&host, &inner),
                unified: unified.map(|m| path::v2_dir(&host, &m, &inner)),
            }),
        };
        let mut m = Manager {
            layout: host.layout,
            driver,
            created: Mutex::new(Vec::new()),
        };
        // Recorded now as well as by `create`, so a copy taken before
        // `create` (and saved in the runtime's state) still knows them.
        m.created = Mutex::new(m.missing_parents());
        Ok(m)
    }

    /// Ancestors of our directories that do not exist (outermost first).
    fn missing_parents(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in self.paths().into_values() {
            let mut missing: Vec<PathBuf> = dir
                .ancestors()
                .skip(1)
                .take_while(|a| !a.exists())
                .map(PathBuf::from)
                .collect();
            missing.reverse();
            for m in missing {
                if !out.contains(&m) {
                    out.push(m);
                }
            }
        }
        out
    }

    /// The host's layout.
    pub fn mode(&self) -> Mode {
        match self.driver {
            Driver::V1(_) => Mode::Legacy,
            Driver::V2(_) => Mode::Unified,
        }
    }

    /// The host's layout, telling hybrid from legacy.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The directories: subsystem → dir on v1 (co-mounted controllers repeat
    /// a dir); the cgroup2 dir under the key `""` (pure v2, or hybrid's
    /// unified tree), as runc names it.
    pub fn paths(&self) -> BTreeMap<String, PathBuf> {
        match &self.driver {
            Driver::V1(m) => {
                let mut p = m.dirs.clone();
                if let Some(u) = &m.unified {
                    p.insert(String::new(), u.clone());
                }
                p
            }
            Driver::V2(m) => BTreeMap::from([(String::new(), m.dir.clone())]),
        }
    }

    fn created_dirs(&self) -> Vec<PathBuf> {
        match self.created.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Create the cgroup directories (every v1 hierarchy, or the v2 dir with
    /// the needed controllers enabled in the parents' subtree_control).
    pub fn create(&self) -> Result<(), Error> {
        let new = match &self.driver {
            Driver::V1(m) => m.create()?,
            Driver::V2(m) => m.create()?,
        };
        let mut g = match self.created.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        for d in new {
            if !g.contains(&d) {
                g.push(d);
            }
        }
        Ok(())
    }

    /// Apply `linux.resources` (used at create and by `update`). This is the
    /// whole desired state, as runc's `Set`: the device rules are always
    /// programmed (an absent list means runc's defaults only).
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), Error> {
        self.apply_inner(resources, false)
    }

    /// `update`: like [`Manager::apply`], but an absent `devices` list leaves
    /// the device rules as they are.
    pub fn update(&self, resources: &LinuxResources) -> Result<(), Error> {
        self.apply_inner(resources, true)
    }

    fn apply_inner(&self, r: &LinuxResources, update: bool) -> Result<(), Error> {
        match &self.driver {
            Driver::V1(m) => m.apply(r, update),
            Driver::V2(m) => m.apply(r, update),
        }
    }

    /// Move `pid` into the cgroup(s).
    pub fn add_pid(&self, pid: i32) -> Result<(), Error> {
        match &self.driver {
            Driver::V1(m) => m.add_pid(pid),
            Driver::V2(m) => m.add_pid(pid),
        }
    }

    /// On v2, an O_DIRECTORY fd of the cgroup for clone3(CLONE_INTO_CGROUP).
    pub fn open_v2_dir(&self) -> Result<Option<OwnedFd>, Error> {
        match &self.driver {
            Driver::V1(_) => Ok(None),
            Driver::V2(m) => devices::bpf::open_dir(&m.dir).map(Some),
        }
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), Error> {
        match &self.driver {
            Driver::V1(m) => m.set_frozen(frozen),
            Driver::V2(m) => m.set_frozen(frozen),
        }
    }

    /// Freeze every process (pause).
    pub fn freeze(&self) -> Result<(), Error> {
        self.set_frozen(true)
    }
    /// Thaw (resume).
    pub fn thaw(&self) -> Result<(), Error> {
        self.set_frozen(false)
    }
    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> Result<bool, Error> {
        match &self.driver {
            Driver::V1(m) => m.is_frozen(),
            Driver::V2(m) => m.is_frozen(),
        }
    }
    /// Pids in the cgroup (recursive).
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        match &self.driver {
            Driver::V1(m) => m.pids(),
            Driver::V2(m) => m.pids(),
        }
    }

    /// Send `signal` to every process in the cgroup (thawing as needed so it
    /// is delivered). SIGKILL on v2 uses `cgroup.kill` when the kernel has
    /// it; otherwise the cgroup is frozen while each pid is signalled (so
    /// nothing forks away), then thawed, as runc does.
    pub fn kill_all(&self, signal: i32) -> Result<(), Error> {
        if let Driver::V2(m) = &self.driver {
            if signal == libc::SIGKILL {
                if let Some(dir) = m.kill_file() {
                    return files::write(dir, "cgroup.kill", "1");
                }
            }
        }
        if self.pids()?.is_empty() {
            return Ok(());
        }
        let can_freeze = match &self.driver {
            Driver::V1(m) => m.has_freezer(),
            Driver::V2(m) => m.dir.exists(),
        };
        if can_freeze {
            self.freeze()?;
        }
        let sent = self.signal_each(signal);
        let thawed = if can_freeze { self.thaw() } else { Ok(()) };
        sent.and(thawed)
    }

    fn signal_each(&self, signal: i32) -> Result<(), Error> {
        for pid in self.pids()? {
            // SAFETY: kill has no memory-safety preconditions.
            if unsafe { libc::kill(pid, signal) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ESRCH) {
                    return Err(Error::Kill {
                        pid,
                        signal,
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }

    /// Current usage.
    pub fn stats(&self) -> Result<Stats, Error> {
        match &self.driver {
            Driver::V1(m) => m.stats(),
            Driver::V2(m) => m.stats(),
        }
    }
    /// Number of OOM kills seen so far (for `events` "oom").
    pub fn oom_kill_count(&self) -> Result<u64, Error> {
        match &self.driver {
            Driver::V1(m) => m.oom_kill_count(),
            Driver::V2(m) => m.oom_kill_count(),
        }
    }

    /// Remove the (now empty) cgroup directories, child cgroups first; then
    /// the parents `create` made, if nothing else uses them. Missing ones
    /// are fine.
    pub fn delete(&self) -> Result<(), Error> {
        match &self.driver {
            Driver::V1(m) => m.delete()?,
            Driver::V2(m) => m.delete()?,
        }
        for d in self.created_dirs().iter().rev() {
            files::remove_if_unused(d);
        }
        Ok(())
    }
}

/// Load the device filter generated from `rules` and attach it to the
/// cgroup2 directory `dir`, replacing the filters attached there before.
pub fn attach_device_filter(dir: &std::path::Path, rules: &[DeviceRule]) -> Result<(), Error> {
    devices::apply_v2(dir, rules)
}

/// How many device filters are attached to the cgroup2 directory `dir`.
pub fn attached_device_filters(dir: &std::path::Path) -> Result<usize, Error> {
    devices::bpf::attached_count(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manager_round_trips_through_json() {
        let m = Manager {
            layout: Layout::Hybrid,
            driver: Driver::V1(v1::V1 {
                dirs: BTreeMap::from([(
                    "memory".to_owned(),
                    PathBuf::from("/sys/fs/cgroup/memory/x"),
                )]),
                unified: Some(PathBuf::from("/sys/fs/cgroup/unified/x")),
            }),
            created: Mutex::new(vec![PathBuf::from("/sys/fs/cgroup/memory/x")]),
        };
        let j = serde_json::to_string(&m).unwrap_or_default();
        let back: Option<Manager> = serde_json::from_str(&j).ok();
        let back = back.map(|b| (b.mode(), b.paths(), b.created_dirs()));
        assert_eq!(back, Some((Mode::Legacy, m.paths(), m.created_dirs())));
    }
}
