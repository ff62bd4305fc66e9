//! `linux.cgroupsPath` → cgroup directories, with runc's cgroupfs rules:
//!
//! * absolute (`/a/b`): relative to each hierarchy's root (its mountpoint);
//! * relative (`a/b`): relative to this process's own cgroup in each v1
//!   hierarchy; on pure v2 relative to the *parent* of our own cgroup (a
//!   cgroup holding processes cannot delegate controllers to children);
//! * empty: the relative path `<id>` (what runc's cgroupfs driver does);
//! * with `--systemd-cgroup`: `slice:prefix:name` mapped onto the cgroupfs
//!   path a systemd driver would use (`/system.slice/prefix-name.scope`).
//!
//! `..` components are resolved lexically and must not climb above the
//! starting point.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::layout::{below_mount_root, Host, Layout};

/// A cleaned cgroupsPath: its components, and whether it was absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inner {
    pub absolute: bool,
    /// `/`-joined components, never empty, no `.`/`..`
    pub path: String,
}

fn invalid(path: &str, reason: &'static str) -> Error {
    Error::InvalidPath {
        path: path.to_owned(),
        reason,
    }
}

/// Clean `p` lexically; `..` may not climb above the start.
fn clean(p: &str) -> Result<Inner> {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(invalid(p, "\"..\" escapes the cgroup hierarchy"));
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(invalid(
            p,
            "names the hierarchy root, not a cgroup below it",
        ));
    }
    Ok(Inner {
        absolute: p.starts_with('/'),
        path: parts.join("/"),
    })
}

/// Resolve `cgroups_path` for container `id` (see the module doc).
pub fn resolve_inner(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<Inner> {
    let given = cgroups_path.filter(|p| !p.is_empty());
    if systemd {
        return systemd_inner(given, id);
    }
    match given {
        Some(p) => clean(p),
        None => {
            if id.is_empty() || id.contains('/') || id == "." || id == ".." {
                return Err(invalid(id, "container id is not a valid cgroup name"));
            }
            clean(id)
        }
    }
}

/// `slice:prefix:name` → `/<expanded slice>/<prefix>-<name>.scope`.
fn systemd_inner(given: Option<&str>, id: &str) -> Result<Inner> {
    let (slice, prefix, name) = match given {
        None => ("", "runc", id),
        Some(p) => {
            let f: Vec<&str> = p.split(':').collect();
            let [slice, prefix, name] = f[..] else {
                return Err(invalid(
                    p,
                    "expected \"slice:prefix:name\" with --systemd-cgroup",
                ));
            };
            (slice, prefix, name)
        }
    };
    let whole = given.unwrap_or(id);
    if name.is_empty() || name.contains('/') || prefix.contains('/') {
        return Err(invalid(
            whole,
            "systemd unit name must be non-empty and contain no '/'",
        ));
    }
    let parent = expand_slice(if slice.is_empty() {
        "system.slice"
    } else {
        slice
    })
    .ok_or_else(|| {
        invalid(
            whole,
            "slice must be like \"a-b.slice\" (no '/', no empty '-' parts)",
        )
    })?;
    let unit = if name.ends_with(".slice") {
        name.to_owned()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    clean(&format!("{parent}/{unit}"))
}

/// systemd's slice nesting: `a-b-c.slice` → `/a.slice/a-b.slice/a-b-c.slice`.
pub fn expand_slice(slice: &str) -> Option<String> {
    let base = slice.strip_suffix(".slice")?;
    if slice.contains('/') {
        return None;
    }
    if base == "-" {
        return Some("/".into());
    }
    let mut out = String::new();
    let mut prefix = String::new();
    for comp in base.split('-') {
        if comp.is_empty() {
            return None;
        }
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(comp);
        out.push('/');
        out.push_str(&prefix);
        out.push_str(".slice");
    }
    Some(out)
}

fn join(base: &Path, rel: &str) -> PathBuf {
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    }
}

fn parent_of(p: &str) -> &str {
    match p.trim_end_matches('/').rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

/// The v1 directories: subsystem name → dir (co-mounted controllers share one).
pub(crate) fn v1_dirs(host: &Host, inner: &Inner) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for m in &host.v1 {
        let base = if inner.absolute {
            m.mountpoint.clone()
        } else {
            let own = m
                .controllers
                .iter()
                .find_map(|c| host.own.v1.get(c))
                .map(String::as_str)
                .unwrap_or("/");
            join(&m.mountpoint, below_mount_root(own, &m.root))
        };
        let dir = join(&base, &inner.path);
        for c in &m.controllers {
            out.insert(c.clone(), dir.clone());
        }
    }
    out
}

/// The cgroup2 directory: on pure v2 relative paths start at our own
/// cgroup's parent; in hybrid mode (where nothing is delegated) at our own.
pub(crate) fn v2_dir(host: &Host, mount: &Path, inner: &Inner) -> PathBuf {
    if inner.absolute {
        return join(mount, &inner.path);
    }
    let own = host.own.v2.as_deref().unwrap_or("/");
    let base = if host.layout == Layout::Unified {
        parent_of(own)
    } else {
        own
    };
    join(&join(mount, base), &inner.path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{OwnCgroups, V1Mount};

    fn host(layout: Layout) -> Host {
        let mut own = OwnCgroups::default();
        own.v1.insert("memory".into(), "/process_api/abc".into());
        own.v1.insert("cpu".into(), "/".into());
        own.v2 = Some("/user.slice/session-1.scope".into());
        Host {
            layout,
            v1: vec![
                V1Mount {
                    controllers: vec!["memory".into()],
                    mountpoint: "/sys/fs/cgroup/memory".into(),
                    root: "/".into(),
                },
                V1Mount {
                    controllers: vec!["cpu".into(), "cpuacct".into()],
                    mountpoint: "/sys/fs/cgroup/cpu,cpuacct".into(),
                    root: "/".into(),
                },
            ],
            own,
        }
    }

    #[test]
    fn empty_path_is_relative_id() {
        let i = resolve_inner(None, "ctr1", false).ok();
        assert_eq!(
            i,
            Some(Inner {
                absolute: false,
                path: "ctr1".into()
            })
        );
        let i = resolve_inner(Some(""), "ctr1", false).ok();
        assert_eq!(i.map(|i| i.absolute), Some(false));
    }

    #[test]
    fn absolute_and_relative_v1() {
        let h = host(Layout::Hybrid);
        let abs = resolve_inner(Some("/docker/x"), "x", false).ok();
        let d = abs.map(|i| v1_dirs(&h, &i)).unwrap_or_default();
        assert_eq!(d["memory"], Path::new("/sys/fs/cgroup/memory/docker/x"));
        assert_eq!(
            d["cpuacct"],
            Path::new("/sys/fs/cgroup/cpu,cpuacct/docker/x")
        );
        let rel = resolve_inner(Some("a/b"), "x", false).ok();
        let d = rel.map(|i| v1_dirs(&h, &i)).unwrap_or_default();
        assert_eq!(
            d["memory"],
            Path::new("/sys/fs/cgroup/memory/process_api/abc/a/b")
        );
        assert_eq!(d["cpu"], Path::new("/sys/fs/cgroup/cpu,cpuacct/a/b"));
    }

    #[test]
    fn relative_v2_uses_parent_of_own_cgroup() {
        let h = host(Layout::Unified);
        let m = Path::new("/sys/fs/cgroup");
        let i = resolve_inner(None, "c", false).ok();
        let d = i.map(|i| v2_dir(&h, m, &i));
        assert_eq!(d.as_deref(), Some(Path::new("/sys/fs/cgroup/user.slice/c")));
        let h = host(Layout::Hybrid);
        let i = resolve_inner(None, "c", false).ok();
        let d = i.map(|i| v2_dir(&h, Path::new("/u"), &i));
        assert_eq!(
            d.as_deref(),
            Some(Path::new("/u/user.slice/session-1.scope/c"))
        );
    }

    #[test]
    fn dotdot_cannot_escape() {
        assert!(resolve_inner(Some("/a/../../etc"), "x", false).is_err());
        assert!(resolve_inner(Some("../x"), "x", false).is_err());
        assert!(resolve_inner(Some("/"), "x", false).is_err());
        let ok = resolve_inner(Some("/a/../b/./c/"), "x", false).ok();
        assert_eq!(ok.map(|i| i.path), Some("b/c".into()));
        assert!(resolve_inner(None, "../x", false).is_err());
    }

    #[test]
    fn systemd_form() {
        let i = resolve_inner(Some("system.slice:docker:abc"), "abc", true).ok();
        assert_eq!(
            i.map(|i| i.path),
            Some("system.slice/docker-abc.scope".into())
        );
        let i = resolve_inner(Some("a-b.slice:crio:x"), "x", true).ok();
        assert_eq!(
            i.map(|i| i.path),
            Some("a.slice/a-b.slice/crio-x.scope".into())
        );
        let i = resolve_inner(None, "id1", true).ok();
        assert_eq!(
            i.clone().map(|i| i.path),
            Some("system.slice/runc-id1.scope".into())
        );
        assert_eq!(i.map(|i| i.absolute), Some(true));
        let i = resolve_inner(Some(":pre:n.slice"), "x", true).ok();
        assert_eq!(i.map(|i| i.path), Some("system.slice/n.slice".into()));
        let i = resolve_inner(Some("-.slice::x"), "x", true).ok();
        assert_eq!(i.map(|i| i.path), Some("x.scope".into()));
        assert!(resolve_inner(Some("/a/b"), "x", true).is_err());
        assert!(resolve_inner(Some("a--b.slice:p:x"), "x", true).is_err());
        assert!(resolve_inner(Some("bad:p:x"), "x", true).is_err());
    }

    #[test]
    fn slice_expansion() {
        assert_eq!(
            expand_slice("a-b-c.slice").as_deref(),
            Some("/a.slice/a-b.slice/a-b-c.slice")
        );
        assert_eq!(expand_slice("-.slice").as_deref(), Some("/"));
        assert_eq!(expand_slice("-a.slice"), None);
        assert_eq!(expand_slice("a.scope"), None);
    }
}
