//! Process creation: the one clone (plus the second fork of staged
//! namespaces), the parent↔child protocol, the container's init sequence and
//! the `exec` child.

pub mod exec;
pub mod fds;
pub mod finish;
pub mod init;
pub mod mempolicy;
pub mod namespaces;
pub mod netdev;
pub mod spawn;
pub mod staged;
pub mod sync;

/// Errors in the child (sent to the parent as a [`sync::ChildError`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// the channel to the parent broke
    #[error("sync with the parent")]
    Sync(#[source] std::io::Error),
    /// the parent sent something out of order
    #[error("unexpected message from the parent: {0}")]
    Protocol(String),
    /// the parent reported a failure
    #[error("{0}")]
    Parent(sync::ChildError),
    #[error(transparent)]
    Namespace(#[from] namespaces::Error),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::Error),
    #[error(transparent)]
    Security(#[from] crate::security::Error),
    #[error(transparent)]
    MemoryPolicy(#[from] mempolicy::Error),
    #[error(transparent)]
    Hook(#[from] crate::hooks::Error),
    #[error(transparent)]
    Console(#[from] crate::console::Error),
    /// a setup step failed
    #[error("{what}")]
    Step {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// args[0] has no '/' and is not found in PATH
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotInPath(String),
    /// execve (or the check before it) failed
    #[error("exec: {name:?}")]
    Exec {
        name: String,
        #[source]
        source: std::io::Error,
    },
}
