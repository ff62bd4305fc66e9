//! Propagation of `/`, the rootfs bind, and the switch of root.

use std::io;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::mount::{mount_change, mount_move, unmount, MountPropagationFlags, UnmountFlags};

use super::Error;

/// `linux.rootfsPropagation` as mount(2) propagation flags.
pub(crate) fn propagation(value: Option<&str>) -> Result<MountPropagationFlags, Error> {
    use MountPropagationFlags as P;
    Ok(match value.unwrap_or("") {
        // runc's default: the host's mount events still reach the container
        // (rslave volumes work), nothing flows back.
        "" | "rslave" => P::DOWNSTREAM | P::REC,
        "rprivate" => P::PRIVATE | P::REC,
        "private" => P::PRIVATE,
        "slave" => P::DOWNSTREAM,
        "rshared" => P::SHARED | P::REC,
        "shared" => P::SHARED,
        "runbindable" => P::UNBINDABLE | P::REC,
        "unbindable" => P::UNBINDABLE,
        other => {
            return Err(Error::Refused {
                what: format!("linux.rootfsPropagation: unknown value {other:?}"),
            })
        }
    })
}

fn step(what: &str) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Step {
        what: what.to_owned(),
        source,
    }
}

/// First step in the new mount namespace: cut `/` off from the host's
/// propagation (recursively slave or private; a shared request is applied
/// only after pivot, on the container's own `/`, so nothing we mount here can
/// reach the host).
pub(crate) fn isolate(wanted: MountPropagationFlags) -> Result<(), Error> {
    let mut flags = wanted;
    if flags.contains(MountPropagationFlags::SHARED)
        || flags.contains(MountPropagationFlags::UNBINDABLE)
    {
        flags = MountPropagationFlags::DOWNSTREAM;
    }
    flags |= MountPropagationFlags::REC;
    mount_change("/", flags)
        .map_err(io::Error::from)
        .map_err(step(
            "make / a slave or private mount (linux.rootfsPropagation)",
        ))
}

/// Bind the rootfs onto itself so it is a mount point pivot_root accepts.
pub(crate) fn bind_rootfs(rootfs: &Path) -> Result<(), Error> {
    rustix::mount::mount_bind_recursive(rootfs, rootfs)
        .map_err(io::Error::from)
        .map_err(step("bind the rootfs onto itself"))
}

/// pivot_root into `rootfs` with the `pivot_root(".", ".")` trick: the old
/// root is stacked under the new one, made a slave (so its unmount cannot
/// propagate to the host) and detached.
pub(crate) fn pivot_root(rootfs: &Path) -> Result<(), Error> {
    let dir = |p: &Path| {
        rustix::fs::open(
            p,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let old = dir(Path::new("/"))
        .map_err(io::Error::from)
        .map_err(step("open /"))?;
    let new = dir(rootfs)
        .map_err(io::Error::from)
        .map_err(step("open the rootfs"))?;
    rustix::process::fchdir(&new)
        .map_err(io::Error::from)
        .map_err(step("chdir to the rootfs"))?;
    rustix::process::pivot_root(".", ".")
        .map_err(io::Error::from)
        .map_err(step("pivot_root"))?;
    rustix::process::fchdir(&old)
        .map_err(io::Error::from)
        .map_err(step("chdir to the old root"))?;
    mount_change(
        ".",
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )
    .map_err(io::Error::from)
    .map_err(step("make the old root a slave"))?;
    unmount(".", UnmountFlags::DETACH)
        .map_err(io::Error::from)
        .map_err(step("detach the old root"))?;
    rustix::process::chdir("/")
        .map_err(io::Error::from)
        .map_err(step("chdir /"))
}

/// `--no-pivot`: move the rootfs mount over `/` and chroot into it. The old
/// root stays reachable to a process that can escape a chroot; runc's
/// `--no-pivot` has the same weakness, which is why it is not the default.
pub(crate) fn move_root(rootfs: &Path) -> Result<(), Error> {
    rustix::process::chdir(rootfs)
        .map_err(io::Error::from)
        .map_err(step("chdir to the rootfs"))?;
    mount_move(rootfs, "/")
        .map_err(io::Error::from)
        .map_err(step("move the rootfs to /"))?;
    rustix::process::chroot(".")
        .map_err(io::Error::from)
        .map_err(step("chroot"))?;
    rustix::process::chdir("/")
        .map_err(io::Error::from)
        .map_err(step("chdir /"))
}

/// After the switch: `/` gets exactly the requested propagation.
pub(crate) fn apply(wanted: MountPropagationFlags) -> Result<(), Error> {
    mount_change("/", wanted)
        .map_err(io::Error::from)
        .map_err(step("set the propagation of / (linux.rootfsPropagation)"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn propagation_values() {
        use MountPropagationFlags as P;
        assert_eq!(propagation(None).unwrap(), P::DOWNSTREAM | P::REC);
        assert_eq!(propagation(Some("rprivate")).unwrap(), P::PRIVATE | P::REC);
        assert_eq!(propagation(Some("rslave")).unwrap(), P::DOWNSTREAM | P::REC);
        assert_eq!(propagation(Some("shared")).unwrap(), P::SHARED);
        assert!(propagation(Some("sideways")).is_err());
    }
}
