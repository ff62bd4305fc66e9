//! Which namespaces the container gets: new ones are created by the one
//! clone; existing ones (given by path) are joined, pid and time by the
//! parent before the clone (they only affect children), the others by the
//! child right after it.
//!
//! When a user namespace is joined by path, or a new one must come after
//! joins by path, the clone creates nothing (the *staged* path, see
//! [`super::staged`]): the child joins, makes its user namespace, unshares
//! the rest, and forks once more when a new pid namespace is wanted.

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
    /// unshare of several namespaces at once failed
    #[error("cannot create the new {names} namespaces")]
    Unshare {
        names: String,
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
    /// unshared by the child after its joins (cgroup, and on the staged
    /// path every new namespace but user, pid and time)
    pub child_unshare: u64,
    /// a new user namespace: the parent writes the id maps
    pub new_user: bool,
    /// the clone creates nothing; the child joins, then creates its user
    /// namespace (asking the parent for the maps), then the rest
    pub staged: bool,
    /// on the staged path: a new pid namespace, which takes a second fork
    pub fork_pid: bool,
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
    // A namespace created by the clone would belong to the host's user
    // namespace, or be unable to follow the joins: stage them instead.
    p.staged = user_joined || (p.new_user && !p.child_joins.is_empty());
    if p.staged {
        p.fork_pid = new_flags & pid != 0;
        p.child_unshare = new_flags & !(time | pid | flag(LinuxNamespaceType::User));
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

    /// The child unshares a cgroup namespace (rooted where it stands, so it
    /// must be in its cgroup first).
    pub fn unshares_cgroup(&self) -> bool {
        self.child_unshare & flag(LinuxNamespaceType::Cgroup) != 0
    }

    /// Child, right after Proceed (fast path): join by path, then unshare
    /// what the clone could not create.
    pub fn enter_child(&self) -> Result<(), Error> {
        self.join_child()?;
        self.unshare_rest()
    }

    /// Child: join the namespaces given by path (user first).
    pub fn join_child(&self) -> Result<(), Error> {
        for j in &self.child_joins {
            setns(j.typ, j.fd.as_fd(), "join")?;
        }
        Ok(())
    }

    /// Child on the staged path: create the new user namespace.
    pub fn unshare_user(&self) -> Result<(), Error> {
        unshare(UnshareFlags::NEWUSER).map_err(|e| Error::Enter {
            what: "create",
            kind: "user",
            source: e.into(),
        })
    }

    /// Child: unshare [`Plan::child_unshare`], plus pid when
    /// [`Plan::fork_pid`] (it applies to the next child only).
    pub fn unshare_rest(&self) -> Result<(), Error> {
        let mut bits = self.child_unshare;
        if self.fork_pid {
            bits |= flag(LinuxNamespaceType::Pid);
        }
        if bits == 0 {
            return Ok(());
        }
        unshare(UnshareFlags::from_bits_retain(bits as u32)).map_err(|e| Error::Unshare {
            names: names(bits),
            source: e.into(),
        })
    }
}

/// "mount, network" for a set of CLONE_NEW* bits.
fn names(bits: u64) -> String {
    use LinuxNamespaceType as T;
    [
        T::Mount,
        T::Cgroup,
        T::Uts,
        T::Ipc,
        T::User,
        T::Pid,
        T::Network,
        T::Time,
    ]
    .into_iter()
    .filter(|t| bits & flag(*t) != 0)
    .map(ns_name)
    .collect::<Vec<_>>()
    .join(", ")
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

    #[test]
    fn new_user_ns_with_a_joined_netns_is_staged() {
        let p = plan(&spec(serde_json::json!([
            {"type": "user"}, {"type": "pid"}, {"type": "mount"}, {"type": "cgroup"},
            {"type": "network", "path": "/proc/self/ns/net"}
        ])))
        .unwrap();
        assert!(p.staged && p.new_user && p.fork_pid);
        assert_eq!(p.clone_flags, 0);
        assert_eq!(
            p.child_unshare,
            (libc::CLONE_NEWNS | libc::CLONE_NEWCGROUP) as u64
        );
        assert_eq!(names(p.child_unshare), "mount, cgroup");
    }

    #[test]
    fn new_pid_ns_in_a_joined_user_ns_forks() {
        let p = plan(&spec(serde_json::json!([
            {"type": "user", "path": "/proc/self/ns/user"}, {"type": "pid"}, {"type": "uts"}
        ])))
        .unwrap();
        assert!(p.staged && p.fork_pid && !p.new_user);
        assert_eq!(p.child_joins[0].typ, LinuxNamespaceType::User);
        assert_eq!(p.child_unshare, libc::CLONE_NEWUTS as u64);
    }

    #[test]
    fn new_user_ns_without_joins_stays_on_the_fast_path() {
        let p = plan(&spec(serde_json::json!([
            {"type": "user"}, {"type": "pid"}, {"type": "time", "path": "/proc/self/ns/time"}
        ])))
        .unwrap();
        assert!(!p.staged && !p.fork_pid);
        assert_eq!(p.parent_joins.len(), 1);
        assert_eq!(
            p.clone_flags,
            (libc::CLONE_NEWUSER | libc::CLONE_NEWPID) as u64
        );
    }
}
