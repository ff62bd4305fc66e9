//! The cgroup v1 manager: one directory per mounted hierarchy (co-mounted
//! controllers share one), plus, in hybrid mode, a directory in the cgroup2
//! tree at /sys/fs/cgroup/unified that the process joins too (as runc does).

pub(crate) mod resources;

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::files;
use crate::freezer;
use crate::stats::{self, Stats};
use resources::Dirs;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct V1 {
    /// subsystem (`memory`, `cpu`, `name=systemd`, ...) → cgroup dir
    pub dirs: Dirs,
    /// hybrid mode: our dir in the cgroup2 tree
    pub unified: Option<PathBuf>,
}

impl V1 {
    /// Every distinct directory, v1 ones first.
    fn all_dirs(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        for d in self
            .dirs
            .values()
            .map(PathBuf::as_path)
            .chain(self.unified.as_deref())
        {
            if !out.contains(&d) {
                out.push(d);
            }
        }
        out
    }

    /// Create every directory; returns the ones created (outermost first).
    pub fn create(&self) -> Result<Vec<PathBuf>> {
        let mut created = Vec::new();
        for d in self.all_dirs() {
            let new = files::create_dirs(d)?;
            if self.dirs.get("cpuset").is_some_and(|c| c == d) {
                for n in &new {
                    inherit_cpuset(n)?;
                }
            }
            created.extend(new);
        }
        Ok(created)
    }

    pub fn add_pid(&self, pid: i32) -> Result<()> {
        self.all_dirs()
            .into_iter()
            .try_for_each(|d| files::add_pid(d, pid))
    }

    pub fn apply(&self, r: &LinuxResources, update: bool) -> Result<()> {
        resources::apply(&self.dirs, r, update)
    }

    fn freezer(&self) -> Result<&Path> {
        self.dirs
            .get("freezer")
            .map(PathBuf::as_path)
            .ok_or_else(|| Error::ControllerMissing {
                resource: "freeze",
                controller: "freezer".into(),
            })
    }

    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        freezer::v1_set(self.freezer()?, frozen)
    }

    pub fn is_frozen(&self) -> Result<bool> {
        match self.dirs.get("freezer") {
            Some(d) => freezer::v1_is_frozen(d),
            None => Ok(false),
        }
    }

    pub fn has_freezer(&self) -> bool {
        self.dirs.contains_key("freezer")
    }

    /// Every hierarchy holds the same processes: read the first of these.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let dir = ["pids", "freezer", "devices", "memory", "cpu"]
            .iter()
            .find_map(|c| self.dirs.get(*c))
            .or_else(|| self.dirs.values().next());
        match dir {
            Some(d) if d.exists() => files::pids_recursive(d),
            _ => Ok(Vec::new()),
        }
    }

    pub fn stats(&self) -> Result<Stats> {
        stats::v1::collect(&self.dirs)
    }

    pub fn oom_kill_count(&self) -> Result<u64> {
        let Some(d) = self.dirs.get("memory") else {
            return Ok(0);
        };
        Ok(files::read_optional(d, "memory.oom_control")?
            .and_then(|c| files::keyed_value(&c, "oom_kill"))
            .unwrap_or(0))
    }

    pub fn delete(&self) -> Result<()> {
        self.all_dirs().into_iter().try_for_each(files::remove_tree)
    }
}

/// A new v1 cpuset cgroup starts with empty `cpus`/`mems`, and no task can
/// join it until they are set: copy the parent's.
fn inherit_cpuset(dir: &Path) -> Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let cur = files::read(dir, f)?;
        if cur.trim().is_empty() {
            let p = files::read(parent, f)?;
            if !p.trim().is_empty() {
                files::write(dir, f, p.trim())?;
            }
        }
    }
    Ok(())
}
