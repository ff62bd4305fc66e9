//! The container lifecycle, one file per operation; the CLI calls these.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod signal;
mod staged;
mod start;
mod supervise;
mod template;
mod update;

use std::path::{Path, PathBuf};

pub use create::{create, CreateOptions};
pub use delete::delete;
pub use events::{events, parse_duration};
pub use exec::{exec, ExecOptions};
pub use features::features;
pub use kill::kill;
pub use list::{list, state, ListFormat};
pub use pause::{pause, resume};
pub use ps::ps;
pub use run::{run, RunOptions};
pub use signal::parse_signal;
pub use start::start;
pub use template::{write_template, TemplateOptions};
pub use update::{update, UpdateOptions};

use crate::process::sync::ChildError;
use crate::state::{Phase, State};
use crate::{console, hooks, process, security, spec, state};

/// Errors of lifecycle operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rdt(#[from] crate::rdt::Error),
    #[error(transparent)]
    State(#[from] state::Error),
    #[error(transparent)]
    Spec(#[from] spec::Error),
    /// cgroup management failed
    #[error("cgroup")]
    Cgroup(#[from] berth_cgroups::Error),
    #[error(transparent)]
    Namespace(#[from] process::namespaces::Error),
    #[error(transparent)]
    Security(#[from] security::Error),
    #[error(transparent)]
    NetDevices(#[from] process::netdev::Error),
    #[error(transparent)]
    Hook(#[from] hooks::Error),
    #[error(transparent)]
    Console(#[from] console::Error),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::Error),
    /// the container's process reported a failure
    #[error("{0}")]
    Child(ChildError),
    /// a system call or file operation failed
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// the request is not allowed (wrong state, bad argument…)
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
    pub(crate) fn errno(what: impl Into<String>) -> impl FnOnce(rustix::io::Errno) -> Error {
        let what = what.into();
        move |e| Error::Io {
            what,
            source: e.into(),
        }
    }
}

/// Global options every operation sees.
#[derive(Debug, Clone)]
pub struct Context {
    /// `--root`
    pub root: state::Root,
    /// `--systemd-cgroup` (accepted; the cgroupfs manager is used)
    pub systemd_cgroup: bool,
}

impl Context {
    /// A context for `--root root`.
    pub fn new(root: impl Into<PathBuf>, systemd_cgroup: bool) -> Self {
        Self {
            root: state::Root::new(root),
            systemd_cgroup,
        }
    }

    /// `linux.seccomp` of `spec` compiled, through the cache under the root.
    fn seccomp(
        &self,
        spec: &oci_spec::runtime::Spec,
    ) -> Result<Option<security::SeccompFilter>, Error> {
        let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
            return Ok(None);
        };
        let cache = self.root.path().join(".keel-seccomp-cache");
        Ok(Some(security::compile_seccomp_cached(s, &cache)?))
    }
}

/// The live status of a container (runtime-spec names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    /// The runtime-spec word.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether init is still the process we started (not a reused pid).
pub fn init_alive(st: &State) -> bool {
    st.pid > 0 && state::pid_start_time(st.pid) == Some(st.pid_start)
}

/// Look at init and the freezer to tell the status.
pub fn status(st: &State) -> Status {
    if !init_alive(st) {
        return Status::Stopped;
    }
    match st.phase {
        Phase::Creating => Status::Creating,
        Phase::Created => Status::Created,
        Phase::Running => {
            let frozen = st
                .cgroup
                .as_ref()
                .is_some_and(|m| m.is_frozen().unwrap_or(false));
            if frozen {
                Status::Paused
            } else {
                Status::Running
            }
        }
    }
}

/// [`status`], plus a pidfd for init unless it is stopped: the pidfd is
/// opened first, so the one pid-reuse check of `status` covers it too.
pub fn status_pinned(st: &State) -> (Status, Option<std::os::fd::OwnedFd>) {
    let fd = rustix::process::Pid::from_raw(st.pid).and_then(|pid| {
        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
    });
    let status = status(st);
    (status, fd.filter(|_| status != Status::Stopped))
}

/// The state object `keel state` prints (runc's shape).
pub fn state_object(st: &State, status: Status) -> serde_json::Value {
    let pid = if status == Status::Stopped { 0 } else { st.pid };
    let mut v = serde_json::json!({
        "ociVersion": spec::OCI_VERSION_MAX,
        "id": st.id,
        "pid": pid,
        "status": status.as_str(),
        "bundle": st.bundle,
        "rootfs": st.rootfs,
        "created": st.created,
        "owner": st.owner,
    });
    if !st.annotations.is_empty() {
        v["annotations"] = serde_json::json!(st.annotations);
    }
    v
}

/// The runtime-spec state JSON for hooks.
pub fn hook_state(st: &State, status: Status) -> Vec<u8> {
    hooks::state_json(&st.id, status.as_str(), st.pid, &st.bundle, &st.annotations)
}

/// Write `pid` to `path` atomically (temp file + rename), as runc does.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), Error> {
    let abs =
        std::path::absolute(path).map_err(Error::io(format!("--pid-file {}", path.display())))?;
    let dir = abs.parent().unwrap_or(Path::new("/"));
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.keel-tmp"));
    std::fs::write(&tmp, pid.to_string())
        .map_err(Error::io(format!("cannot write {}", tmp.display())))?;
    std::fs::rename(&tmp, &abs).map_err(Error::io(format!("cannot write {}", abs.display())))
}

/// The error for a container whose init is gone.
pub(crate) fn not_running(id: &str) -> Error {
    Error::Invalid(format!("container {id} is not running"))
}

/// Send `sig` through a pidfd.
pub fn signal_pidfd(fd: std::os::fd::BorrowedFd<'_>, sig: i32) -> Result<(), Error> {
    // SAFETY: pidfd_send_signal with a valid pidfd, a signal number and no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            sig,
            0usize,
            0u32,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(Error::Io {
            what: format!("cannot send signal {sig}"),
            source: std::io::Error::last_os_error(),
        })
    }
}
