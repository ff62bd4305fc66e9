//! The spec's `mounts`, in order: each one built detached (`fsopen`/`fsmount`
//! or `open_tree`), configured with `mount_setattr`, then attached with
//! `move_mount` onto a destination opened inside the rootfs.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use super::options::Options;
use super::resolve::{file_type, Kind, Root};
use super::sys::{self, Attrs};
use super::{cgroup, idmap, Error};

/// What every mount needs besides the mount itself.
pub(crate) struct Ctx<'a> {
    pub root: &'a Root,
    pub bundle: &'a Path,
    /// the container has its own cgroup namespace
    pub cgroupns: bool,
    /// SELinux label for new filesystems (`linux.mountLabel`), when enforced
    pub label: Option<&'a str>,
    /// called before a cgroup mount (see `rootfs::Setup::before_cgroup`)
    pub before_cgroup: &'a dyn Fn() -> std::io::Result<()>,
}

/// One spec mount, described for messages: "mount /proc (proc)".
pub(crate) struct Named<'a> {
    pub mount: &'a Mount,
    pub dest: PathBuf,
    pub typ: String,
    pub opts: Options,
}

impl<'a> Named<'a> {
    pub(crate) fn new(mount: &'a Mount) -> Self {
        let opts = Options::parse(mount.options().as_deref().unwrap_or_default());
        let mut typ = mount.typ().clone().unwrap_or_default();
        if typ.is_empty() || typ == "none" {
            typ = if opts.bind {
                "bind".into()
            } else {
                "none".into()
            };
        }
        Self {
            mount,
            dest: mount.destination().clone(),
            typ,
            opts,
        }
    }

    /// Whether this is a bind mount (by option or by type).
    pub(crate) fn is_bind(&self) -> bool {
        self.opts.bind || self.typ == "bind" || self.typ == "rbind"
    }

    /// An error for `step` of this mount.
    pub(crate) fn fail(
        &self,
        step: impl std::fmt::Display,
    ) -> impl FnOnce(io::Error) -> Error + '_ {
        let what = format!("mount {} ({}): {step}", self.dest.display(), self.typ);
        move |source| Error::Step { what, source }
    }

    /// A refusal of this mount.
    pub(crate) fn refuse(&self, why: impl std::fmt::Display) -> Error {
        Error::Refused {
            what: format!("mount {} ({}): {why}", self.dest.display(), self.typ),
        }
    }
}

/// Perform every spec mount in order.
pub(crate) fn mount_all(ctx: &Ctx<'_>, mounts: &[Mount]) -> Result<(), Error> {
    for (index, m) in mounts.iter().enumerate() {
        mount_one(ctx, &Named::new(m), index)?;
    }
    Ok(())
}

fn mount_one(ctx: &Ctx<'_>, m: &Named<'_>, index: usize) -> Result<(), Error> {
    if !m.dest.is_absolute() {
        return Err(m.refuse("destination must be an absolute path"));
    }
    if m.is_bind() {
        return bind(ctx, m, index);
    }
    if matches!(m.typ.as_str(), "cgroup" | "cgroup2") {
        (ctx.before_cgroup)().map_err(m.fail("wait for the cgroup join"))?;
    }
    match m.typ.as_str() {
        "cgroup" => cgroup::mount_v1(ctx, m),
        "cgroup2" => cgroup::mount_v2(ctx, m),
        _ => filesystem(ctx, m),
    }
}

/// The host path of a bind source (relative sources are in the bundle).
fn bind_source(bundle: &Path, m: &Named<'_>) -> Result<PathBuf, Error> {
    let src = m
        .mount
        .source()
        .as_ref()
        .ok_or_else(|| m.refuse("a bind mount needs a source"))?;
    Ok(if src.is_absolute() {
        src.clone()
    } else {
        bundle.join(src)
    })
}

/// A bind mount: clone the source tree, set its attributes (and idmapping)
/// while detached (or take the one the parent prepared), attach it, then
/// apply propagation.
fn bind(ctx: &Ctx<'_>, m: &Named<'_>, index: usize) -> Result<(), Error> {
    let (mnt, kind) = match super::premount::take(index) {
        Some(ready) => ready,
        None => detached_bind(ctx.bundle, m)?,
    };
    attach(ctx, m, &mnt, kind)?;
    propagate(m, &mnt)
}

/// Whether the mount is an idmapped bind mount.
pub(crate) fn is_idmapped_bind(m: &Named<'_>) -> bool {
    m.is_bind()
        && (m.opts.idmap.is_some()
            || m.mount.uid_mappings().is_some()
            || m.mount.gid_mappings().is_some())
}

/// The configured, still detached copy of a bind mount's source, and what
/// kind of mount point it needs.
pub(crate) fn detached_bind(bundle: &Path, m: &Named<'_>) -> Result<(OwnedFd, Kind), Error> {
    let src = bind_source(bundle, m)?;
    let src_fd = rustix::fs::open(
        &src,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(io::Error::from)
    .map_err(m.fail(format_args!("open source {}", src.display())))?;
    let kind = match file_type(&src_fd) {
        Ok(rustix::fs::FileType::Directory) => Kind::Dir,
        Ok(_) => Kind::File,
        Err(e) => return Err(m.fail("stat source")(e)),
    };
    let mnt = sys::clone_tree(src_fd.as_fd(), m.opts.recursive_bind || m.typ == "rbind")
        .map_err(m.fail(format_args!("clone {}", src.display())))?;
    configure_detached(m, &mnt)?;
    Ok((mnt, kind))
}

/// A new filesystem instance (tmpfs, proc, sysfs, devpts, mqueue, …).
fn filesystem(ctx: &Ctx<'_>, m: &Named<'_>) -> Result<(), Error> {
    let source = m
        .mount
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| m.typ.clone());
    let mut opts = m.opts.clone();
    if is_dev(m) {
        // /dev is filled after the mounts; `finish_dev` makes it read-only.
        opts.attrs.set &= !super::options::readonly_attrs().set;
        opts.rattrs.set &= !super::options::readonly_attrs().set;
    }
    let mut data = opts.fs_data();
    if let Some(label) = ctx.label {
        if labelled(&m.typ) {
            data.push(format!("context={label}"));
        }
    }
    let mnt = match sys::new_fs(&m.typ, &source, &data, opts.fsmount_attrs()) {
        Ok(mnt) => mnt,
        Err(e) if m.typ == "sysfs" && e.source.raw_os_error() == Some(libc::EPERM) => host_sys(m)?,
        Err(e) => return Err(m.fail(e.step)(e.source)),
    };
    if opts.tmpcopyup {
        copy_up(ctx, m, &mnt)?;
    }
    if let Some(recursive) = m.opts.idmap {
        idmap_detached(m, &mnt, recursive)?;
    }
    attach(ctx, m, &mnt, Kind::Dir)?;
    propagate(m, &mnt)
}

/// A sysfs instance is refused in a user namespace that does not own the
/// network namespace (the container shares the host's): bind the host's
/// /sys instead, recursively, with the mount's attributes (as runc does).
fn host_sys(m: &Named<'_>) -> Result<OwnedFd, Error> {
    let sys_fd = rustix::fs::open(
        "/sys",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(io::Error::from)
    .map_err(m.fail("open the host's /sys"))?;
    let mnt = sys::clone_tree(sys_fd.as_fd(), true).map_err(m.fail("bind the host's /sys"))?;
    let attrs = Attrs {
        set: m.opts.fsmount_attrs(),
        ..Attrs::default()
    };
    sys::setattr(mnt.as_fd(), true, attrs, None).map_err(m.fail("set mount attributes"))?;
    Ok(mnt)
}

/// Filesystems that take an SELinux `context=` option.
fn labelled(typ: &str) -> bool {
    !matches!(
        typ,
        "proc" | "sysfs" | "cgroup" | "cgroup2" | "securityfs" | "bind"
    )
}

/// Attributes, recursive attributes and idmapping of a detached bind.
fn configure_detached(m: &Named<'_>, mnt: &OwnedFd) -> Result<(), Error> {
    let attrs = Attrs {
        propagation: 0,
        ..m.opts.attrs
    };
    if !attrs.is_empty() {
        sys::setattr(mnt.as_fd(), false, attrs, None).map_err(m.fail("set mount attributes"))?;
    }
    let rattrs = Attrs {
        propagation: 0,
        ..m.opts.rattrs
    };
    if !rattrs.is_empty() {
        sys::setattr(mnt.as_fd(), true, rattrs, None)
            .map_err(m.fail("set recursive mount attributes"))?;
    }
    if let Some(recursive) = m.opts.idmap {
        idmap_detached(m, mnt, recursive)?;
    } else if m.mount.uid_mappings().is_some() || m.mount.gid_mappings().is_some() {
        idmap_detached(m, mnt, false)?;
    }
    Ok(())
}

/// Make a detached mount idmapped with the mount's uid/gid mappings.
fn idmap_detached(m: &Named<'_>, mnt: &OwnedFd, recursive: bool) -> Result<(), Error> {
    let (Some(uids), Some(gids)) = (m.mount.uid_mappings(), m.mount.gid_mappings()) else {
        return Err(m.refuse("an idmapped mount needs both uidMappings and gidMappings"));
    };
    let ns = idmap::userns(uids, gids).map_err(m.fail("create the idmapping user namespace"))?;
    sys::setattr(mnt.as_fd(), recursive, Attrs::default(), Some(ns.as_fd()))
        .map_err(m.fail("idmap the mount"))
}

/// Open (creating if needed) the destination inside the rootfs and attach.
/// `/proc` and `/sys` filesystems go only onto real directories.
fn attach(ctx: &Ctx<'_>, m: &Named<'_>, mnt: &OwnedFd, kind: Kind) -> Result<(), Error> {
    let shown = ctx.root.show(&m.dest);
    let dest = if matches!(m.typ.as_str(), "proc" | "sysfs") {
        real_directory(ctx.root, m, &shown)?
    } else {
        ctx.root
            .ensure(&m.dest, kind)
            .map_err(m.fail(format_args!("destination {}", shown.display())))?
    };
    sys::attach(mnt.as_fd(), dest.as_fd())
        .map_err(m.fail(format_args!("attach at {}", shown.display())))
}

/// The destination opened without following a final symlink (created when
/// missing), refused unless it is a directory: the fd checked is the fd
/// mounted on.
fn real_directory(root: &Root, m: &Named<'_>, shown: &Path) -> Result<OwnedFd, Error> {
    let open = || root.open_path(&m.dest, true);
    let fd = match open() {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => root
            .ensure(&m.dest, Kind::Dir)
            .and_then(|_| open())
            .map_err(m.fail(format_args!("destination {}", shown.display())))?,
        other => other.map_err(m.fail(format_args!("destination {}", shown.display())))?,
    };
    match file_type(&fd) {
        Ok(rustix::fs::FileType::Directory) => Ok(fd),
        Ok(rustix::fs::FileType::Symlink) => {
            Err(m.refuse(format_args!("destination {} is a symlink", shown.display())))
        }
        Ok(_) => Err(m.refuse(format_args!(
            "destination {} is not a directory",
            shown.display()
        ))),
        Err(e) => Err(m.fail(format_args!("stat destination {}", shown.display()))(e)),
    }
}

/// Propagation options, in order, on the attached mount.
fn propagate(m: &Named<'_>, mnt: &OwnedFd) -> Result<(), Error> {
    for p in &m.opts.propagation {
        let attrs = Attrs {
            propagation: p.kind,
            ..Attrs::default()
        };
        sys::setattr(mnt.as_fd(), p.recursive, attrs, None).map_err(m.fail("set propagation"))?;
    }
    Ok(())
}

/// A non-bind mount at /dev, which keel fills with devices.
fn is_dev(m: &Named<'_>) -> bool {
    !m.is_bind() && super::resolve::clean(&m.dest) == Path::new("dev")
}

/// After /dev is filled: a read-only /dev mount of the spec becomes read-only.
pub(crate) fn finish_dev(root: &Root, mounts: &[Mount]) -> Result<(), Error> {
    for m in mounts.iter().map(Named::new) {
        if !is_dev(&m) || !m.opts.readonly() {
            continue;
        }
        let fd = root
            .open_path(&m.dest, true)
            .map_err(m.fail("reopen /dev"))?;
        sys::setattr(fd.as_fd(), false, super::options::readonly_attrs(), None)
            .map_err(m.fail("make /dev read-only"))?;
    }
    Ok(())
}

/// `tmpcopyup`: fill the new filesystem with what the destination holds now.
fn copy_up(ctx: &Ctx<'_>, m: &Named<'_>, mnt: &OwnedFd) -> Result<(), Error> {
    let dest = match ctx.root.open_path(&m.dest, false) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(m.fail("tmpcopyup: open the destination")(e)),
    };
    super::copyup::copy_dir(&dest, mnt).map_err(m.fail("tmpcopyup"))
}
