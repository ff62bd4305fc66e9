//! The container's root filesystem: propagation, the rootfs bind, the spec's
//! mounts, /dev, pivot_root, masked and read-only paths.
//!
//! Every function here runs inside the container's init process, in its new
//! mount namespace (and user namespace, once the parent has written the id
//! maps), before the user switch. Order, as `process::init` calls it:
//! `prepare` → createContainer hooks → `pivot` → `bind_console` (terminal only)
//! → `finalize`.
//!
//! OWNER: rootfs work. Signatures are the contract with `process::init`; change
//! one only together with its call sites.

use std::path::Path;

use oci_spec::runtime::Spec;

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
}

/// What the rootfs steps need to know.
pub struct Setup<'a> {
    /// the whole runtime spec
    pub spec: &'a Spec,
    /// absolute host path of the container's root filesystem
    pub rootfs: &'a Path,
    /// absolute path of the bundle (relative mount sources resolve against it)
    pub bundle: &'a Path,
}

/// Before pivot: make `/` private/slave per `linux.rootfsPropagation`, bind the
/// rootfs onto itself, perform `mounts` (destinations resolved inside the rootfs,
/// never following symlinks out of it), create /dev (default devices,
/// `linux.devices`, /dev/pts, /dev/shm, ptmx, fd/std* links).
pub fn prepare(setup: &Setup<'_>) -> Result<(), Error> {
    let _ = setup;
    Ok(())
}

/// pivot_root into the rootfs (or MS_MOVE + chroot when `no_pivot`), detach
/// the old root, chdir("/").
pub fn pivot(setup: &Setup<'_>, no_pivot: bool) -> Result<(), Error> {
    let _ = (setup, no_pivot);
    Ok(())
}

/// After pivot, when `process.terminal`: bind-mount the pty slave at
/// `slave_path` (a path in the container's /dev/pts) onto /dev/console.
pub fn bind_console(slave_path: &Path) -> Result<(), Error> {
    let _ = slave_path;
    Ok(())
}

/// After pivot: masked paths, read-only paths, `root.readonly`, and the final
/// propagation of `/`.
pub fn finalize(setup: &Setup<'_>) -> Result<(), Error> {
    let _ = setup;
    Ok(())
}
