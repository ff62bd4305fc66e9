//! Process attributes applied just before execve, in the container's init and
//! in every `exec`ed process: rlimits, scheduler, I/O priority, personality,
//! CPU affinity, LSM labels, the user switch, capabilities, no_new_privs and
//! seccomp.
//!
//! Order, as `process::init` (and exec) calls it:
//! `compile_seccomp` (early, may run in the parent) → `apply_pre_user` →
//! `switch_user` → `apply_capabilities` → `set_no_new_privs` (if asked) →
//! `load_seccomp` → execve.
//!
//! OWNER: security work. Signatures are the contract with `process`; change one
//! only together with its call sites.

use std::os::fd::OwnedFd;

use oci_spec::runtime::{LinuxSeccomp, Process, Spec};

/// Errors while applying process attributes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// a process attribute could not be applied
    #[error("{what}")]
    Step {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// A seccomp filter compiled from `linux.seccomp`, ready to load.
pub struct SeccompFilter {
    _private: (),
}

/// Compile `linux.seccomp` into a loadable filter (validation errors name the
/// offending syscall/arch/action).
pub fn compile_seccomp(seccomp: &LinuxSeccomp) -> Result<SeccompFilter, Error> {
    let _ = seccomp;
    Ok(SeccompFilter { _private: () })
}

/// Still root in the container: rlimits, oomScoreAdj, personality, ioPriority,
/// scheduler, execCPUAffinity (initial), apparmor/selinux exec labels.
pub fn apply_pre_user(process: &Process, spec: &Spec) -> Result<(), Error> {
    let _ = (process, spec);
    Ok(())
}

/// setgroups(additionalGids) / setgid / setuid with capabilities kept across
/// the switch, and the umask.
pub fn switch_user(process: &Process) -> Result<(), Error> {
    let _ = process;
    Ok(())
}

/// Set the five capability sets from `process.capabilities` (bounding dropped
/// first, ambient raised last).
pub fn apply_capabilities(process: &Process) -> Result<(), Error> {
    let _ = process;
    Ok(())
}

/// prctl(PR_SET_NO_NEW_PRIVS).
pub fn set_no_new_privs() -> Result<(), Error> {
    Ok(())
}

/// Load the filter. With `listenerPath` set the filter is loaded with
/// SECCOMP_FILTER_FLAG_NEW_LISTENER and the notify fd is returned so the
/// caller can send it (with the container state) to the listener.
pub fn load_seccomp(filter: &SeccompFilter) -> Result<Option<OwnedFd>, Error> {
    let _ = filter;
    Ok(None)
}

/// Send the seccomp notify fd to the agent listening on `listener_path`
/// (SCM_RIGHTS, with the container process state JSON as the message body,
/// as the runtime spec's "seccomp state" describes), then close our copy.
pub fn send_to_listener(
    listener_path: &std::path::Path,
    notify_fd: OwnedFd,
    container_process_state: &serde_json::Value,
) -> Result<(), Error> {
    let _ = (listener_path, notify_fd, container_process_state);
    Ok(())
}
