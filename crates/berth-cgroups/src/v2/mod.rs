//! The cgroup v2 manager: one directory in the unified tree, with the
//! controllers enabled in every ancestor's `cgroup.subtree_control`.

pub(crate) mod resources;

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::files;
use crate::freezer;
use crate::stats::{self, Stats};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct V2 {
    /// the cgroup2 mount (`/sys/fs/cgroup`)
    pub mount: PathBuf,
    /// the container's cgroup
    pub dir: PathBuf,
}

impl V2 {
    /// The ancestors from the mount down to the parent of our dir.
    fn ancestors(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self
            .dir
            .ancestors()
            .skip(1)
            .take_while(|a| a.starts_with(&self.mount))
            .map(Path::to_path_buf)
            .collect();
        out.reverse();
        out
    }

    /// Create the dir (and missing parents), enabling in each ancestor every
    /// controller it has, so the dir gets their interface files. A
    /// controller the kernel refuses to enable (e.g. the ancestor has
    /// processes) is skipped: setting its resources then fails naming the
    /// missing file.
    pub fn create(&self) -> Result<Vec<PathBuf>> {
        let created = files::create_dirs(&self.dir)?;
        for a in self.ancestors() {
            enable_controllers(&a)?;
        }
        Ok(created)
    }

    pub fn add_pid(&self, pid: i32) -> Result<()> {
        files::add_pid(&self.dir, pid)
    }

    pub fn apply(&self, r: &LinuxResources, update: bool) -> Result<()> {
        resources::apply(&self.dir, r, update)
    }

    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        freezer::v2_set(&self.dir, frozen)
    }

    pub fn is_frozen(&self) -> Result<bool> {
        if !self.dir.exists() {
            return Ok(false);
        }
        freezer::v2_is_frozen(&self.dir)
    }

    pub fn pids(&self) -> Result<Vec<i32>> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        files::pids_recursive(&self.dir)
    }

    /// `cgroup.kill` (Linux 5.14+) SIGKILLs the whole subtree atomically.
    pub fn kill_file(&self) -> Option<&Path> {
        files::exists(&self.dir, "cgroup.kill").then_some(self.dir.as_path())
    }

    pub fn stats(&self) -> Result<Stats> {
        stats::v2::collect(&self.dir)
    }

    pub fn oom_kill_count(&self) -> Result<u64> {
        Ok(files::read_optional(&self.dir, "memory.events")?
            .and_then(|c| files::keyed_value(&c, "oom_kill"))
            .unwrap_or(0))
    }

    pub fn delete(&self) -> Result<()> {
        files::remove_tree(&self.dir)
    }
}

/// Write `+ctrl` for each controller of `dir/cgroup.controllers` not yet in
/// its `cgroup.subtree_control`.
fn enable_controllers(dir: &Path) -> Result<()> {
    let available = files::read(dir, "cgroup.controllers")?;
    let enabled = files::read(dir, "cgroup.subtree_control")?;
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    for c in available
        .split_whitespace()
        .filter(|c| !enabled.contains(c))
    {
        // best effort, see `create`
        let _ = files::write(dir, "cgroup.subtree_control", &format!("+{c}"));
    }
    Ok(())
}
