//! Process attributes applied just before execve, in the container's init and
//! in every `exec`ed process: rlimits, scheduler, I/O priority, personality,
//! CPU affinity, LSM labels, the user switch, capabilities, no_new_privs and
//! seccomp.
//!
//! OWNER: security work. Signatures are the contract with `process`; change one
//! only together with its call sites.
//!
//! # Order of application
//!
//! [`apply_process`] runs the whole sequence; most steps are public too so
//! `process::init` can interleave its own work, but their order matters:
//!
//! 1. [`validate`] and [`compile_seccomp_cached`] (or [`compile_seccomp`]) —
//!    in the parent, before anything is set up: they only check values and
//!    build BPF in memory. Compiling Docker's profile for three arches costs
//!    ~50 ms, a cache hit ~50 µs.
//! 2. [`apply_pre_user`] — while still (container) root with every
//!    capability: rlimits (raising a hard limit needs CAP_SYS_RESOURCE),
//!    oom_score_adj (lowering needs CAP_SYS_RESOURCE), personality,
//!    ioPriority (the RT class needs CAP_SYS_ADMIN), scheduler (RT policies and
//!    negative nice need CAP_SYS_NICE), execCPUAffinity `final`, and the
//!    AppArmor/SELinux exec labels (they take effect at execve).
//! 3. [`switch_user`] — PR_SET_KEEPCAPS, setgroups(additionalGids), setresgid,
//!    setresuid, umask. KEEPCAPS keeps the permitted set across the uid change
//!    (the kernel still clears the effective set), so step 4 can still act.
//! 4. capabilities (`caps::CapPlan`) — re-raise effective from permitted, drop the
//!    bounding set (PR_CAPBSET_DROP needs CAP_SETPCAP, hence after 3 but before
//!    the final capset), one capset for effective/permitted/inheritable, then
//!    the ambient set (needs the cap in permitted and inheritable).
//! 5. [`set_no_new_privs`] when `process.noNewPrivileges`.
//! 6. [`load_seccomp`] — last, so the filter constrains as little of the
//!    runtime as possible. Without no_new_privs the kernel only accepts a
//!    filter from a task holding CAP_SYS_ADMIN: [`apply_process`] then keeps
//!    CAP_SYS_ADMIN in effective/permitted through step 4, loads the filter,
//!    and drops it with one final capset. runc
//!    instead loads the filter before the user switch in that case, which
//!    requires the profile to allow setgroups/setresuid/capset/prctl; ours
//!    only requires `capset` (and only when noNewPrivileges is false).
//!
//! Between `load_seccomp` and execve the runtime may only make syscalls the
//! filter allows: sending the notify fd to the parent (`sendmsg`), waiting for
//! `start`, and `execve` itself. A profile that denies `execve` makes the
//! container fail to start (as with runc). `SCMP_ACT_NOTIFY` on the syscalls
//! the runtime itself needs in that window is refused at compile time, since it
//! would deadlock before the agent has the notify fd.

mod caps;
mod lsm;
mod rlimits;
mod sched;
mod seccomp;
#[cfg(test)]
mod tests;
mod user;

use std::os::fd::OwnedFd;

use oci_spec::runtime::{Process, Spec};

pub use caps::{apply_exec_capability_additions, parse_capability};
pub use lsm::{apparmor_enabled, check as check_lsm, selinux_enabled};
pub use sched::{apply_initial_cpu_affinity, parse_cpu_list};
pub use seccomp::{
    compile_seccomp, compile_seccomp_cached, container_process_state, load_seccomp,
    send_to_listener, SeccompFilter,
};
pub use user::{parse_exec_user, ExecUser};

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
    /// config.json: `{field}`: {reason}
    #[error("config.json: {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// unknown capability name
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    /// libseccomp refused part of the filter
    #[error("linux.seccomp: {what}")]
    Seccomp {
        what: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// an LSM label was requested but the LSM is not enabled
    #[error("{field} is set to {label:?} but {lsm} is not enabled on this host")]
    LsmUnavailable {
        field: &'static str,
        label: String,
        lsm: &'static str,
    },
}

impl Error {
    fn step(what: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        Error::Step {
            what: what.into(),
            source: source.into(),
        }
    }

    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Check everything about the process attributes that can be checked
/// without applying them, so a bad config.json fails in the parent before
/// any namespace, mount or cgroup exists. The apply steps check again.
pub fn validate(process: &Process, spec: &Spec) -> Result<(), Error> {
    for limit in process.rlimits().iter().flatten() {
        rlimits::validate(limit)?;
    }
    if let Some(adj) = process.oom_score_adj() {
        sched::check_oom_score_adj(adj)?;
    }
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        sched::personality_value(p)?;
    }
    if let Some(prio) = process.io_priority() {
        sched::io_priority_value(prio)?;
    }
    if let Some(s) = process.scheduler() {
        sched::sched_attr(s)?;
    }
    if let Some(aff) = process.exec_cpu_affinity() {
        sched::check_cpu_affinity(aff)?;
    }
    if let Some(mask) = process.user().umask() {
        user::check_umask(mask)?;
    }
    lsm::check(
        process.apparmor_profile().as_deref(),
        process.selinux_label().as_deref(),
    )
}

/// Every step below, in order, for a process about to execve (container init
/// or `exec`). Returns the seccomp notify fd when the filter has a listener;
/// the caller hands it to the parent, which calls [`send_to_listener`].
pub fn apply_process(
    process: &Process,
    spec: &Spec,
    seccomp: Option<&SeccompFilter>,
) -> Result<Option<OwnedFd>, Error> {
    let no_new_privs = process.no_new_privileges().unwrap_or(false);
    apply_pre_user(process, spec)?;
    switch_user(process)?;
    let plan = caps::CapPlan::from_process(process)?;
    match seccomp {
        // Loading a filter without no_new_privs needs CAP_SYS_ADMIN: hold it
        // until the filter is in, then drop it.
        Some(filter) if !no_new_privs => {
            plan.apply(caps::CAP_SYS_ADMIN_BIT)?;
            let notify = load_seccomp(filter)?;
            plan.drop_held()?;
            Ok(notify)
        }
        Some(filter) => {
            plan.apply(0)?;
            set_no_new_privs()?;
            load_seccomp(filter)
        }
        None => {
            plan.apply(0)?;
            if no_new_privs {
                set_no_new_privs()?;
            }
            Ok(None)
        }
    }
}

/// Still root in the container: rlimits, oomScoreAdj, personality, ioPriority,
/// scheduler, execCPUAffinity (final), apparmor/selinux exec labels.
pub fn apply_pre_user(process: &Process, spec: &Spec) -> Result<(), Error> {
    rlimits::apply(process.rlimits().as_deref().unwrap_or_default())?;
    sched::apply_oom_score_adj(process.oom_score_adj())?;
    let personality = spec.linux().as_ref().and_then(|l| l.personality().as_ref());
    sched::apply_personality(personality)?;
    sched::apply_io_priority(process.io_priority().as_ref())?;
    sched::apply_scheduler(process.scheduler().as_ref())?;
    sched::apply_final_cpu_affinity(process.exec_cpu_affinity().as_ref())?;
    lsm::apply_apparmor(process.apparmor_profile().as_deref())?;
    lsm::apply_selinux(process.selinux_label().as_deref())?;
    Ok(())
}

/// setgroups(additionalGids) / setgid / setuid with capabilities kept across
/// the switch, and the umask.
pub fn switch_user(process: &Process) -> Result<(), Error> {
    user::switch(process.user())
}

/// prctl(PR_SET_NO_NEW_PRIVS).
pub fn set_no_new_privs() -> Result<(), Error> {
    rustix::thread::set_no_new_privs(true).map_err(|e| Error::step("setting no_new_privs", e))
}
