//! `cgroup` and `cgroup2` mounts.
//!
//! On a v1 (or hybrid) host, a `cgroup` mount becomes a tmpfs holding one
//! mount per host hierarchy, named as on the host (`cpu,cpuacct`, with
//! `cpu` and `cpuacct` symlinks), plus `unified` when the host has it. Inside
//! a cgroup namespace each is a new cgroup filesystem instance (rooted at the
//! namespace); without one, a bind of the container's own cgroup directory.
//! On a pure v2 host both types mount cgroup2 the same way.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::mount::{Ctx, Named};
use super::resolve::Kind;
use super::sys::{self, Attrs};
use super::Error;

/// A cgroup hierarchy mounted on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    /// host mount point, e.g. `/sys/fs/cgroup/cpu,cpuacct`
    pub mountpoint: PathBuf,
    /// `cgroup` or `cgroup2`
    pub fstype: String,
    /// controllers and `name=` options (v1), for a new instance and for
    /// finding the container's path in /proc/self/cgroup
    pub controllers: Vec<String>,
}

/// The hierarchies mounted under /sys/fs/cgroup, from mountinfo text.
pub(crate) fn hierarchies(mountinfo: &str, known: &[String]) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mountpoint) = left.split(' ').nth(4) else {
            continue;
        };
        let mut r = right.split(' ');
        let fstype = r.next().unwrap_or_default();
        let superopts = r.nth(1).unwrap_or_default();
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let mountpoint = PathBuf::from(unescape(mountpoint));
        if !mountpoint.starts_with("/sys/fs/cgroup") {
            continue;
        }
        let controllers = superopts
            .split(',')
            .filter(|o| o.starts_with("name=") || known.iter().any(|k| k == o))
            .map(str::to_owned)
            .collect();
        let h = Hierarchy {
            mountpoint,
            fstype: fstype.to_owned(),
            controllers,
        };
        out.retain(|o| o.mountpoint != h.mountpoint);
        out.push(h);
    }
    out
}

/// A mountinfo field with its `\ooo` octal escapes (space, tab, newline,
/// backslash) decoded.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(
                    d.iter()
                        .fold(0u8, |n, c| n.wrapping_mul(8).wrapping_add(c - b'0')),
                );
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Controller names the kernel knows (first column of /proc/cgroups).
fn known_controllers() -> Vec<String> {
    std::fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The host's hierarchies as this process sees them. /proc/cgroups is read
/// only when a v1 hierarchy is mounted: cgroup2 superblock options name no
/// controllers.
fn host_hierarchies() -> io::Result<Vec<Hierarchy>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let known = if info.contains(" - cgroup ") {
        known_controllers()
    } else {
        Vec::new()
    };
    Ok(hierarchies(&info, &known))
}

/// This process's cgroup path in hierarchy `h` (from /proc/self/cgroup).
fn own_path(h: &Hierarchy, proc_cgroup: &str) -> Option<PathBuf> {
    proc_cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (id, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let matches = if h.fstype == "cgroup2" {
            id == "0" && ctrls.is_empty()
        } else {
            let mut a: Vec<&str> = ctrls.split(',').collect();
            let mut b: Vec<&str> = h.controllers.iter().map(String::as_str).collect();
            a.sort_unstable();
            b.sort_unstable();
            a == b
        };
        matches.then(|| PathBuf::from(path))
    })
}

/// /proc/self/cgroup, read once per cgroup mount, when binds of this
/// process's own cgroup directories need it (no cgroup namespace).
fn own_cgroups(ctx: &Ctx<'_>) -> io::Result<String> {
    if ctx.cgroupns {
        return Ok(String::new());
    }
    std::fs::read_to_string("/proc/self/cgroup")
}

/// A detached mount of hierarchy `h`: a new instance inside a cgroup
/// namespace, else a bind of this process's own cgroup directory
/// (`proc_cgroup` is this process's /proc/self/cgroup).
fn hierarchy_mount(
    ctx: &Ctx<'_>,
    h: &Hierarchy,
    attrs: u64,
    proc_cgroup: &str,
) -> io::Result<OwnedFd> {
    if ctx.cgroupns {
        let mut opts = h.controllers.clone();
        if h.fstype == "cgroup" && !opts.iter().any(|o| !o.starts_with("name=")) {
            opts.push("none".into());
        }
        return Ok(sys::new_fs(&h.fstype, &h.fstype, &opts, attrs)?);
    }
    let own = own_path(h, proc_cgroup).unwrap_or_default();
    let dir = h.mountpoint.join(super::resolve::clean(&own));
    let fd = rustix::fs::open(
        &dir,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let mnt = sys::clone_tree(fd.as_fd(), false)?;
    sys::setattr(
        mnt.as_fd(),
        false,
        Attrs {
            set: attrs,
            clr: 0,
            propagation: 0,
        },
        None,
    )?;
    Ok(mnt)
}

/// Whether the host is pure cgroup v2.
fn unified_only(hs: &[Hierarchy]) -> bool {
    hs.iter()
        .any(|h| h.fstype == "cgroup2" && h.mountpoint == Path::new("/sys/fs/cgroup"))
}

/// A `cgroup2` mount: the container's view of the unified hierarchy.
pub(crate) fn mount_v2(ctx: &Ctx<'_>, m: &Named<'_>) -> Result<(), Error> {
    let hs = host_hierarchies().map_err(m.fail("read /proc/self/mountinfo"))?;
    mount_unified(ctx, m, hs)
}

/// The unified hierarchy among the host's `hs` (as mountinfo lists it),
/// mounted at the mount's destination.
fn mount_unified(ctx: &Ctx<'_>, m: &Named<'_>, hs: Vec<Hierarchy>) -> Result<(), Error> {
    let h = hs
        .into_iter()
        .find(|h| h.fstype == "cgroup2")
        .unwrap_or_else(|| Hierarchy {
            mountpoint: "/sys/fs/cgroup".into(),
            fstype: "cgroup2".into(),
            controllers: Vec::new(),
        });
    let proc_cgroup = own_cgroups(ctx).map_err(m.fail("read /proc/self/cgroup"))?;
    let mnt = hierarchy_mount(ctx, &h, m.opts.fsmount_attrs(), &proc_cgroup)
        .map_err(m.fail("create cgroup2"))?;
    attach_at(ctx, m, &mnt, &m.dest)
}

/// A `cgroup` mount: every host hierarchy under a tmpfs (or cgroup2 on a
/// pure v2 host).
pub(crate) fn mount_v1(ctx: &Ctx<'_>, m: &Named<'_>) -> Result<(), Error> {
    let hs = host_hierarchies().map_err(m.fail("read /proc/self/mountinfo"))?;
    if unified_only(&hs) {
        return mount_unified(ctx, m, hs);
    }
    let attrs = m.opts.fsmount_attrs();
    let rw = attrs & !u64::from(rustix::mount::MountAttrFlags::MOUNT_ATTR_RDONLY.bits());
    let tmpfs = sys::new_fs("tmpfs", "tmpfs", &["mode=755".to_owned()], rw)
        .map_err(|e| m.fail(format_args!("tmpfs for the hierarchies: {}", e.step))(e.source))?;
    attach_at(ctx, m, &tmpfs, &m.dest)?;
    let proc_cgroup = own_cgroups(ctx).map_err(m.fail("read /proc/self/cgroup"))?;
    for h in &hs {
        let Some(name) = h.mountpoint.file_name() else {
            continue;
        };
        let mnt = hierarchy_mount(ctx, h, attrs, &proc_cgroup)
            .map_err(m.fail(format_args!("mount hierarchy {}", h.mountpoint.display())))?;
        attach_at(ctx, m, &mnt, &m.dest.join(name))?;
        comount_links(ctx, m, name.to_string_lossy().as_ref())?;
    }
    if m.opts.readonly() {
        sys::setattr(tmpfs.as_fd(), false, super::options::readonly_attrs(), None)
            .map_err(m.fail("make the cgroup tmpfs read-only"))?;
    }
    Ok(())
}

/// `cpu` and `cpuacct` symlinks to a co-mounted `cpu,cpuacct`.
fn comount_links(ctx: &Ctx<'_>, m: &Named<'_>, name: &str) -> Result<(), Error> {
    if !name.contains(',') {
        return Ok(());
    }
    let dir = ctx
        .root
        .ensure(&m.dest, Kind::Dir)
        .map_err(m.fail("reopen destination"))?;
    for part in name.split(',') {
        match rustix::fs::symlinkat(name, &dir, part) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(m.fail(format_args!("symlink {part}"))(e.into())),
        }
    }
    Ok(())
}

/// Attach `mnt` at `dest` inside the rootfs.
fn attach_at(ctx: &Ctx<'_>, m: &Named<'_>, mnt: &OwnedFd, dest: &Path) -> Result<(), Error> {
    let shown = ctx.root.show(dest);
    let fd = ctx
        .root
        .ensure(dest, Kind::Dir)
        .map_err(m.fail(format_args!("destination {}", shown.display())))?;
    sys::attach(mnt.as_fd(), fd.as_fd())
        .map_err(m.fail(format_args!("attach at {}", shown.display())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
35 33 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
36 33 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn hybrid_hierarchies_are_found_with_their_controllers() {
        let known: Vec<String> = ["cpu", "cpuacct", "memory"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let hs = hierarchies(HYBRID, &known);
        assert_eq!(hs.len(), 3);
        assert_eq!(hs[0].fstype, "cgroup2");
        assert_eq!(hs[1].controllers, vec!["name=systemd"]);
        assert_eq!(hs[2].controllers, vec!["cpu", "cpuacct"]);
        assert!(!unified_only(&hs));
        let own = "12:cpuacct,cpu:/keel/x\n1:name=systemd:/s\n0::/u\n";
        assert_eq!(own_path(&hs[2], own), Some(PathBuf::from("/keel/x")));
        assert_eq!(own_path(&hs[1], own), Some(PathBuf::from("/s")));
        assert_eq!(own_path(&hs[0], own), Some(PathBuf::from("/u")));
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
    }
}
