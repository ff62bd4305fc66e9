//! The crate's one error type. Each message names the cgroup file or
//! directory and the operation; the OS error travels as the `#[source]`, so a
//! binary printing the chain shows e.g.
//! `cgroup memory.max: write 10: Device or resource busy (os error 16)`.

use std::io;
use std::path::PathBuf;

/// Errors from cgroup management.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// a cgroup file or directory operation failed
    #[error("{what}: {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// writing a value to a cgroup interface file failed
    #[error("cgroup {file}: write {value}")]
    Write {
        /// the file name relative to the cgroup dir (e.g. `memory.max`)
        file: String,
        value: String,
        /// the full path written
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// reading a cgroup interface file failed
    #[error("cgroup {file}: read {path}")]
    Read {
        file: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// a cgroup interface file held something we could not parse
    #[error("cgroup {file}: cannot parse {content:?}")]
    Parse { file: String, content: String },
    /// no cgroup filesystem is mounted at /sys/fs/cgroup
    #[error("no cgroup filesystem found at /sys/fs/cgroup (neither cgroup2 nor v1 controllers)")]
    NoCgroupFs,
    /// cgroupsPath is malformed or escapes the cgroup hierarchy
    #[error("linux.cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// a resource was requested whose controller is not available
    #[error(
        "cannot set {resource}: the {controller} cgroup controller is not available on this host"
    )]
    ControllerMissing {
        resource: &'static str,
        controller: String,
    },
    /// a resource value is out of range or inconsistent
    #[error("linux.resources.{resource}: {reason}")]
    InvalidResource {
        resource: &'static str,
        reason: String,
    },
    /// `linux.resources.unified` is a cgroup v2 feature
    #[error("linux.resources.unified: cannot set unified (cgroup v2) keys on a cgroup v1 host")]
    UnifiedOnV1,
    /// a device cgroup rule cannot be expressed
    #[error("linux.resources.devices[{index}]: {reason}")]
    InvalidDeviceRule { index: usize, reason: String },
    /// loading or attaching the v2 device eBPF program failed
    #[error("cgroup {path}: {what} of the device eBPF program failed{log}")]
    Bpf {
        what: &'static str,
        path: PathBuf,
        /// the verifier log, when there is one (prefixed with ": ")
        log: String,
        #[source]
        source: io::Error,
    },
    /// the freezer did not reach the wanted state in time
    #[error("cgroup {path}: freezer did not reach {state} within {millis} ms")]
    FreezeTimeout {
        path: PathBuf,
        state: &'static str,
        millis: u64,
    },
    /// sending a signal to a process of the cgroup failed
    #[error("kill pid {pid} with signal {signal}")]
    Kill {
        pid: i32,
        signal: i32,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The errno of the underlying OS error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. }
            | Error::Write { source, .. }
            | Error::Read { source, .. }
            | Error::Bpf { source, .. }
            | Error::Kill { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
