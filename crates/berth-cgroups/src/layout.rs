//! What the host has: which cgroup layout, where each v1 hierarchy is
//! mounted, and which cgroup this process is in (`/proc/self/cgroup`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where cgroup filesystems are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The host's cgroup layout in detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Layout {
    /// `/sys/fs/cgroup` is cgroup2: every controller lives in one tree.
    Unified,
    /// v1 controllers under `/sys/fs/cgroup/<ctrl>` plus a cgroup2 mount at
    /// `/sys/fs/cgroup/unified` (managed as v1; the unified tree is joined too).
    Hybrid,
    /// v1 controllers only.
    Legacy,
}

impl Layout {
    /// Look at `/sys/fs/cgroup`.
    pub fn detect() -> Result<Layout> {
        let root = Path::new(CGROUP_ROOT);
        match fs_type(root) {
            Some(CGROUP2_SUPER_MAGIC) => return Ok(Layout::Unified),
            Some(TMPFS_MAGIC) | Some(_) => {}
            None => return Err(Error::NoCgroupFs),
        }
        if fs_type(&root.join("unified")) == Some(CGROUP2_SUPER_MAGIC) {
            Ok(Layout::Hybrid)
        } else {
            Ok(Layout::Legacy)
        }
    }
}

// f_type's integer type differs between architectures
#[allow(clippy::unnecessary_cast)]
fn fs_type(path: &Path) -> Option<i64> {
    rustix::fs::statfs(path).ok().map(|s| s.f_type as i64)
}

/// One mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V1Mount {
    /// controllers bound to it (`cpu`, `cpuacct`, `name=systemd`, ...)
    pub controllers: Vec<String>,
    pub mountpoint: PathBuf,
    /// the cgroup of the hierarchy that is mounted there (`/` normally)
    pub root: String,
}

/// The v1 cgroup mounts listed in a mountinfo file's content.
pub(crate) fn parse_v1_mounts(mountinfo: &str) -> Vec<V1Mount> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        // id parent maj:min root mountpoint opts [optional...] - fstype source superopts
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post_f = post.split(' ');
        if post_f.next() != Some("cgroup") {
            continue;
        }
        let super_opts = post_f.nth(1).unwrap_or("");
        let pre_f: Vec<&str> = pre.split(' ').collect();
        if pre_f.len() < 5 {
            continue;
        }
        let controllers: Vec<String> = super_opts
            .split(',')
            .filter(|o| is_controller_opt(o))
            .map(str::to_owned)
            .collect();
        if controllers.is_empty() {
            continue;
        }
        out.push(V1Mount {
            controllers,
            mountpoint: PathBuf::from(unescape_mountinfo(pre_f[4])),
            root: unescape_mountinfo(pre_f[3]),
        });
    }
    out
}

fn is_controller_opt(o: &str) -> bool {
    const NOT: &[&str] = &[
        "rw",
        "ro",
        "noprefix",
        "clone_children",
        "xattr",
        "cpuset_v2_mode",
        "favordynmods",
    ];
    if o.starts_with("name=") {
        return true;
    }
    !o.is_empty() && !o.contains('=') && !NOT.contains(&o)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's cgroups: v1 controller → path, plus the v2 path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OwnCgroups {
    pub v1: BTreeMap<String, String>,
    pub v2: Option<String>,
}

/// Parse `/proc/self/cgroup` content.
pub(crate) fn parse_proc_cgroup(content: &str) -> OwnCgroups {
    let mut own = OwnCgroups::default();
    for line in content.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if ctrls.is_empty() {
            own.v2 = Some(path.to_owned());
        } else {
            for c in ctrls.split(',') {
                own.v1.insert(c.to_owned(), path.to_owned());
            }
        }
    }
    own
}

/// Everything about the host that cgroupsPath resolution needs.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    pub layout: Layout,
    pub v1: Vec<V1Mount>,
    pub own: OwnCgroups,
}

impl Host {
    pub fn detect() -> Result<Host> {
        let layout = Layout::detect()?;
        let read = |p: &str| {
            std::fs::read_to_string(p).map_err(|source| Error::Io {
                what: "read",
                path: PathBuf::from(p),
                source,
            })
        };
        let own = parse_proc_cgroup(&read("/proc/self/cgroup")?);
        let v1 = if layout == Layout::Unified {
            Vec::new()
        } else {
            parse_v1_mounts(&read("/proc/self/mountinfo")?)
        };
        if layout == Layout::Legacy && v1.is_empty() {
            return Err(Error::NoCgroupFs);
        }
        Ok(Host { layout, v1, own })
    }

    /// The cgroup2 mount: `/sys/fs/cgroup` or, in hybrid mode, its `unified`.
    pub fn unified_mount(&self) -> Option<PathBuf> {
        match self.layout {
            Layout::Unified => Some(PathBuf::from(CGROUP_ROOT)),
            Layout::Hybrid => Some(Path::new(CGROUP_ROOT).join("unified")),
            Layout::Legacy => None,
        }
    }
}

/// `path` (a cgroup path as /proc/self/cgroup shows it) seen through a mount
/// of the hierarchy's `root`: the part below the mount root.
pub(crate) fn below_mount_root<'a>(path: &'a str, root: &str) -> &'a str {
    if root == "/" {
        return path;
    }
    match path.strip_prefix(root) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /nested /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn v1_mounts_from_mountinfo() {
        let m = parse_v1_mounts(MOUNTINFO);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(m[1].mountpoint, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(m[2].root, "/nested");
        assert_eq!(m[3].controllers, vec!["name=systemd"]);
    }

    #[test]
    fn proc_self_cgroup() {
        let own = parse_proc_cgroup("9:name=systemd:/\n4:memory:/a/b\n2:cpu,cpuacct:/c\n0::/u\n");
        assert_eq!(own.v1.get("memory").map(String::as_str), Some("/a/b"));
        assert_eq!(own.v1.get("cpuacct").map(String::as_str), Some("/c"));
        assert_eq!(own.v1.get("name=systemd").map(String::as_str), Some("/"));
        assert_eq!(own.v2.as_deref(), Some("/u"));
    }

    #[test]
    fn mount_root_is_stripped() {
        assert_eq!(below_mount_root("/nested/x", "/nested"), "/x");
        assert_eq!(below_mount_root("/nestedx", "/nested"), "/nestedx");
        assert_eq!(below_mount_root("/a", "/"), "/a");
    }

    #[test]
    fn escaped_mountpoint() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
    }
}
