//! The container's root filesystem: propagation, the rootfs bind, the spec's
//! mounts, /dev, pivot_root, masked and read-only paths.
//!
//! Every function here runs inside the container's init process, in its new
//! mount namespace (and user namespace, once the parent has written the id
//! maps), before the user switch. Order, as `process::init` calls it:
//! `prepare` → createContainer hooks → `pivot` → `bind_console` (terminal only)
//! → `finalize`.
//!
//! Paths inside the rootfs are never walked by the kernel from the host's
//! `/`: see `resolve` for the confinement and `sys` for the fd-based mount API
//! every mount goes through.
//!
//! OWNER: rootfs work. Signatures are the contract with `process::init`; change
//! one only together with its call sites.

mod cgroup;
mod console;
mod copyup;
mod devices;
mod idmap;
mod masked;
mod mount;
mod options;
mod pivot;
mod premount;
mod resolve;
mod sys;

use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

pub use premount::{premount_idmapped, Premounted};
use resolve::Root;

/// Errors while building the container's filesystem view.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// a mount or filesystem step failed
    #[error("{what}")]
    Step {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// the spec asks for something refused for safety or not supported
    #[error("{what}")]
    Refused { what: String },
}

/// What the rootfs steps need to know.
pub struct Setup<'a> {
    /// the whole runtime spec
    pub spec: &'a Spec,
    /// absolute host path of the container's root filesystem
    pub rootfs: &'a Path,
    /// absolute path of the bundle (relative mount sources resolve against it)
    pub bundle: &'a Path,
    /// called before the first cgroup mount (init may still be joining its
    /// cgroups while the other mounts are made)
    pub before_cgroup: &'a dyn Fn() -> std::io::Result<()>,
}

impl Setup<'_> {
    /// Whether the spec asks for (or joins) a namespace of type `t`.
    fn has_namespace(&self, t: LinuxNamespaceType) -> bool {
        self.spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| ns.iter().any(|n| n.typ() == t))
    }

    fn propagation(&self) -> Result<rustix::mount::MountPropagationFlags, Error> {
        let value = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.rootfs_propagation().as_deref());
        pivot::propagation(value)
    }

    /// `linux.mountLabel`, only when SELinux is enforcing on this host.
    fn label(&self) -> Option<&str> {
        let label = self.spec.linux().as_ref()?.mount_label().as_deref()?;
        crate::security::selinux_enabled().then_some(label)
    }
}

/// Whether /dev is left to us (no bind mount of the spec covers it).
fn needs_dev(mounts: &[oci_spec::runtime::Mount]) -> bool {
    !mounts.iter().any(|m| {
        let n = mount::Named::new(m);
        n.is_bind() && resolve::clean(&n.dest) == Path::new("dev")
    })
}

/// Before pivot: make `/` private/slave per `linux.rootfsPropagation`, bind the
/// rootfs onto itself, perform `mounts` (destinations resolved inside the rootfs,
/// never following symlinks out of it), create /dev (default devices,
/// `linux.devices`, /dev/pts, /dev/shm, ptmx, fd/std* links).
pub fn prepare(setup: &Setup<'_>) -> Result<(), Error> {
    pivot::isolate(setup.propagation()?)?;
    pivot::bind_rootfs(setup.rootfs)?;
    let root = Root::open(setup.rootfs).map_err(|source| Error::Step {
        what: format!("open the rootfs {}", setup.rootfs.display()),
        source,
    })?;
    let ctx = mount::Ctx {
        root: &root,
        bundle: setup.bundle,
        cgroupns: setup.has_namespace(LinuxNamespaceType::Cgroup),
        before_cgroup: setup.before_cgroup,
        label: setup.label(),
    };
    let no_mounts = Vec::new();
    let mounts = setup.spec.mounts().as_ref().unwrap_or(&no_mounts);
    mount::mount_all(&ctx, mounts)?;
    if needs_dev(mounts) {
        fill_dev(setup, &root)?;
    }
    Ok(())
}

/// Default devices, `linux.devices` and the /dev links.
fn fill_dev(setup: &Setup<'_>, root: &Root) -> Result<(), Error> {
    if devices::is_host_dev(root) {
        // The host's /dev reached through a bind behind a symlink: creating
        // nodes or replacing ptmx there would change the host.
        return Ok(());
    }
    let mut nodes = devices::defaults();
    let linux = setup.spec.linux().as_ref();
    for d in linux
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        nodes.push(devices::from_spec(d)?);
    }
    devices::create(root, &nodes, setup.has_namespace(LinuxNamespaceType::User))?;
    devices::links(root)
}

/// pivot_root into the rootfs (or MS_MOVE + chroot when `no_pivot`), detach
/// the old root, chdir("/").
pub fn pivot(setup: &Setup<'_>, no_pivot: bool) -> Result<(), Error> {
    if no_pivot {
        pivot::move_root(setup.rootfs)
    } else {
        pivot::pivot_root(setup.rootfs)
    }
}

/// After pivot, when `process.terminal`: bind-mount the pty slave at
/// `slave_path` (a path in the container's /dev/pts) onto /dev/console.
pub fn bind_console(slave_path: &Path) -> Result<(), Error> {
    let root = Root::open(Path::new("/")).map_err(|source| Error::Step {
        what: "/dev/console: open /".into(),
        source,
    })?;
    console::bind(&root, slave_path)
}

/// After pivot: masked paths, read-only paths, `root.readonly`, and the final
/// propagation of `/`.
pub fn finalize(setup: &Setup<'_>) -> Result<(), Error> {
    let root = Root::open(Path::new("/")).map_err(|source| Error::Step {
        what: "open / after pivot".into(),
        source,
    })?;
    let linux = setup.spec.linux().as_ref();
    if let Some(paths) = linux.and_then(|l| l.masked_paths().as_ref()) {
        masked::mask(&root, paths)?;
    }
    if let Some(paths) = linux.and_then(|l| l.readonly_paths().as_ref()) {
        masked::readonly(&root, paths)?;
    }
    if let Some(mounts) = setup.spec.mounts() {
        mount::finish_dev(&root, mounts)?;
    }
    if setup
        .spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        masked::readonly_root(&root)?;
    }
    pivot::apply(setup.propagation()?)
}
