//! Which namespaces the container gets: new ones are created by the one
//! clone; existing ones (given by path) are joined, pid and time by the
//! parent before the clone (they only affect children), the others by the
//! child right after it.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rustix::fs::{Mode, OFlags};
use rustix::thread::{LinkNameSpaceType, UnshareFlags};

use crate::spec::ns_name;

/// Errors choosing, opening or entering namespaces.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// a namespace path given in linux.namespaces cannot be opened
    #[error("linux.namespaces: cannot open the {kind} namespace {}", path.display())]
    Open {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// setns/unshare failed
    #[error("cannot {what} the {kind} namespace")]
    Enter {
        what: &'static str,
        kind: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// a combination keel does not implement
    #[error("linux.namespaces: {0}")]
    Unsupported(String),
    /// linux.timeOffsets could not be written
    #[error("cannot set linux.timeOffsets")]
    TimeOffsets(#[source] std::io::Error),
}

/// A namespace to join.
#[derive(Debug)]
pub struct Join {
    pub typ: LinuxNamespaceType,
    pub fd: OwnedFd,
}

/// The namespace plan of one container.
#[derive(Debug, Default)]
pub struct Plan {
    /// CLONE_NEW* flags for the clone itself
    pub clone_flags: u64,
    /// joined by the parent before the clone (pid, time)
    pub parent_joins: Vec<Join>,
    /// joined by the child (user first)
    pub child_joins: Vec<Join>,
    /// unshared by the child after its joins (cgroup, and the rest when the
    /// user namespace is joined rather than new)
    pub child_unshare: u64,
    /// a new user namespace: the parent writes the id maps
    pub new_user: bool,
    /// a new time namespace: the parent unshares it and writes the offsets
    pub new_time: bool,
}

/// The CLONE_NEW* bit of a namespace type.
pub fn flag(t: LinuxNamespaceType) -> u64 {
    t as u64
}

fn kind_of(t: LinuxNamespaceType) -> LinkNameSpaceType {
    match t {
        LinuxNamespaceType::Mount => LinkNameSpaceType::Mount,
        LinuxNamespaceType::Cgroup => LinkNameSpaceType::ControlGroup,
        LinuxNamespaceType::Uts => LinkNameSpaceType::HostNameAndNISDomainName,
        LinuxNamespaceType::Ipc => LinkNameSpaceType::InterProcessCommunication,
        LinuxNamespaceType::User => LinkNameSpaceType::User,
        LinuxNamespaceType::Pid => LinkNameSpaceType::ProcessID,
        LinuxNamespaceType::Network => LinkNameSpaceType::Network,
        LinuxNamespaceType::Time => LinkNameSpaceType::Time,
    }
}

/// Build the plan, opening every joined namespace path now (a bad path is
/// reported before anything is created).
pub fn plan(spec: &Spec) -> Result<Plan, Error> {
    let mut p = Plan::default();
    let empty = Vec::new();
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .unwrap_or(&empty);
    let mut new_flags = 0u64;
    for ns in namespaces {
        let t = ns.typ();
        match ns.path() {
            None => new_flags |= flag(t),
            Some(path) => {
                let fd = open_ns(t, path)?;
                let j = Join { typ: t, fd };
                match t {
                    LinuxNamespaceType::Pid | LinuxNamespaceType::Time => p.parent_joins.push(j),
                    LinuxNamespaceType::User => p.child_joins.insert(0, j),
                    _ => p.child_joins.push(j),
                }
            }
        }
    }
    let user_joined = p
        .child_joins
        .first()
        .is_some_and(|j| j.typ == LinuxNamespaceType::User);
    p.new_user = new_flags & flag(LinuxNamespaceType::User) != 0;
    p.new_time = new_flags & flag(LinuxNamespaceType::Time) != 0;
    let cgroup = flag(LinuxNamespaceType::Cgroup);
    let time = flag(LinuxNamespaceType::Time);
    let pid = flag(LinuxNamespaceType::Pid);
    if p.new_user && !p.child_joins.is_empty() {
        return Err(Error::Unsupported(format!(
            "joining the {} namespace by path together with a new user namespace is not supported",
            ns_name(p.child_joins[0].typ)
        )));
    }
    if user_joined {
        if new_flags & pid != 0 {
            return Err(Error::Unsupported(
                "a new pid namespace inside a user namespace joined by path is not supported"
                    .into(),
            ));
        }
        p.child_unshare = new_flags & !time;
        p.clone_flags = 0;
    } else {
        // The cgroup namespace is unshared once the child is in its cgroup;
        // the time namespace by the parent (offsets must precede any entry).
        p.clone_flags = new_flags & !(cgroup | time);
        p.child_unshare = new_flags & cgroup;
    }
    Ok(p)
}

fn open_ns(t: LinuxNamespaceType, path: &Path) -> Result<OwnedFd, Error> {
    rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
        Error::Open {
            kind: ns_name(t),
            path: path.to_owned(),
            source: e.into(),
        }
    })
}

/// The parent's own pid/time namespaces, restored after the clone.
pub struct Restore {
    saved: Vec<(LinuxNamespaceType, OwnedFd)>,
}

impl Plan {
    /// Parent, before the clone: join pid/time by path, or unshare a new time
    /// namespace and write its offsets. Returns how to undo it.
    pub fn enter_parent(&self, spec: &Spec) -> Result<Option<Restore>, Error> {
        if self.parent_joins.is_empty() && !self.new_time {
            return Ok(None);
        }
        let mut saved = Vec::new();
        for j in &self.parent_joins {
            saved.push((j.typ, save_own(j.typ)?));
            setns(j.typ, j.fd.as_fd(), "join")?;
        }
        if self.new_time {
            saved.push((
                LinuxNamespaceType::Time,
                save_own(LinuxNamespaceType::Time)?,
            ));
            unshare(UnshareFlags::NEWTIME).map_err(|e| Error::Enter {
                what: "create",
                kind: "time",
                source: e.into(),
            })?;
            write_time_offsets(spec)?;
        }
        Ok(Some(Restore { saved }))
    }

    /// Child, right after Proceed: join by path (user first), then unshare
    /// what the clone could not create.
    pub fn enter_child(&self) -> Result<(), Error> {
        for j in &self.child_joins {
            setns(j.typ, j.fd.as_fd(), "join")?;
        }
        if self.child_unshare != 0 {
            let flags = UnshareFlags::from_bits_retain(self.child_unshare as u32);
            unshare(flags).map_err(|e| Error::Enter {
                what: "create",
                kind: "cgroup",
                source: e.into(),
            })?;
        }
        Ok(())
    }
}

impl Restore {
    /// Go back to the parent's own pid/time namespaces (for its children).
    pub fn undo(self) -> Result<(), Error> {
        for (t, fd) in self.saved {
            setns(t, fd.as_fd(), "return to")?;
        }
        Ok(())
    }
}

/// unshare(2) of CLONE_NEW* bits only.
fn unshare(flags: UnshareFlags) -> rustix::io::Result<()> {
    // SAFETY: rustix marks unshare unsafe because of UnshareFlags::FILES
    // (fd tables shared between threads); we pass only CLONE_NEW* bits and
    // are single-threaded.
    unsafe { rustix::thread::unshare_unsafe(flags) }
}

fn save_own(t: LinuxNamespaceType) -> Result<OwnedFd, Error> {
    let name = match t {
        LinuxNamespaceType::Pid => "/proc/self/ns/pid",
        _ => "/proc/self/ns/time",
    };
    open_ns(t, Path::new(name))
}

fn setns(
    t: LinuxNamespaceType,
    fd: std::os::fd::BorrowedFd<'_>,
    what: &'static str,
) -> Result<(), Error> {
    rustix::thread::move_into_link_name_space(fd, Some(kind_of(t))).map_err(|e| Error::Enter {
        what,
        kind: ns_name(t),
        source: e.into(),
    })
}

fn write_time_offsets(spec: &Spec) -> Result<(), Error> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text).map_err(Error::TimeOffsets)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(ns: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "root": {"path": "r"},
            "linux": {"namespaces": ns}
        }))
        .unwrap()
    }

    #[test]
    fn new_namespaces_go_into_clone_flags() {
        let p = plan(&spec(serde_json::json!([
            {"type": "pid"}, {"type": "mount"}, {"type": "cgroup"}, {"type": "network"}
        ])))
        .unwrap();
        assert_eq!(
            p.clone_flags,
            (libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWNET) as u64
        );
        assert_eq!(p.child_unshare, libc::CLONE_NEWCGROUP as u64);
        assert!(!p.new_user);
    }

    #[test]
    fn missing_path_is_reported() {
        let e = plan(&spec(serde_json::json!([
            {"type": "network", "path": "/nonexistent/ns/net"}
        ])))
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ns/net"), "{e}");
    }

    #[test]
    fn joined_paths_are_split_between_parent_and_child() {
        let p = plan(&spec(serde_json::json!([
            {"type": "pid", "path": "/proc/self/ns/pid"},
            {"type": "network", "path": "/proc/self/ns/net"},
            {"type": "mount"}
        ])))
        .unwrap();
        assert_eq!(p.parent_joins.len(), 1);
        assert_eq!(p.child_joins.len(), 1);
        assert_eq!(p.clone_flags, libc::CLONE_NEWNS as u64);
    }
}
