//! Idmapped bind mounts built by the parent.
//!
//! `MOUNT_ATTR_IDMAP` needs `CAP_SYS_ADMIN` over the source's filesystem and
//! maps that are relative to the host, which the container's init no longer
//! has once it lives in its own user namespace. So the runtime's parent,
//! before the clone, builds each idmapped bind mount detached
//! ([`premount_idmapped`]); the child inherits the fds with its copy of
//! memory, and [`super::prepare`] attaches them in place of building its own.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use oci_spec::runtime::Spec;

use super::mount::{detached_bind, is_idmapped_bind, Named};
use super::resolve::Kind;
use super::Error;

/// (index in `mounts`, detached mount, kind of mount point).
type Ready = (usize, OwnedFd, Kind);

static READY: Mutex<Vec<Ready>> = Mutex::new(Vec::new());

/// The prepared mounts. A panic while holding the lock cannot leave the list
/// half-changed (every change is one assignment, push or removal), so a
/// poisoned lock is used as it is.
fn ready() -> MutexGuard<'static, Vec<Ready>> {
    READY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Parent side; keeps the prepared mounts for the child. Dropping it (after
/// the clone) closes the parent's copies.
#[must_use = "the prepared mounts are closed when this is dropped"]
pub struct Premounted(());

impl Drop for Premounted {
    fn drop(&mut self) {
        ready().clear();
    }
}

/// Parent side, before the clone, in the host's user namespace: build every
/// idmapped bind mount of the spec, detached and fully configured.
pub fn premount_idmapped(spec: &Spec, bundle: &Path) -> Result<Premounted, Error> {
    let mut built = Vec::new();
    for (index, mount) in spec.mounts().iter().flatten().enumerate() {
        let m = Named::new(mount);
        if is_idmapped_bind(&m) {
            let (fd, kind) = detached_bind(bundle, &m)?;
            built.push((index, fd, kind));
        }
    }
    *ready() = built;
    Ok(Premounted(()))
}

/// Child side: the prepared mount for `mounts[index]`, if the parent made one.
pub(crate) fn take(index: usize) -> Option<(OwnedFd, Kind)> {
    let mut ready = ready();
    let at = ready.iter().position(|(i, _, _)| *i == index)?;
    let (_, fd, kind) = ready.swap_remove(at);
    Some((fd, kind))
}
