//! Scheduling-related process attributes: oomScoreAdj, personality,
//! ioPriority, scheduler and execCPUAffinity.

use oci_spec::runtime::{
    ExecCPUAffinity, IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, Scheduler,
};
use rustix::process::Pid;
use rustix::thread::CpuSet;

use super::Error;

/// `process.oomScoreAdj` into /proc/self/oom_score_adj (lowering it needs
/// CAP_SYS_RESOURCE).
pub(super) fn check_oom_score_adj(adj: i32) -> Result<(), Error> {
    if !(-1000..=1000).contains(&adj) {
        return Err(Error::invalid(
            "process.oomScoreAdj",
            format!("{adj} is outside -1000..1000"),
        ));
    }
    Ok(())
}

pub(super) fn apply_oom_score_adj(adj: Option<i32>) -> Result<(), Error> {
    let Some(adj) = adj else { return Ok(()) };
    check_oom_score_adj(adj)?;
    std::fs::write("/proc/self/oom_score_adj", adj.to_string())
        .map_err(|e| Error::step(format!("setting oom_score_adj to {adj}"), e))
}

const PER_LINUX: libc::c_ulong = 0x0000;
const PER_LINUX32: libc::c_ulong = 0x0008;

/// The personality(2) value of `linux.personality`. The spec defines no flag
/// values yet, so any flag is refused rather than silently ignored.
pub(super) fn personality_value(p: &LinuxPersonality) -> Result<libc::c_ulong, Error> {
    if let Some(flag) = p.flags().iter().flatten().next() {
        return Err(Error::invalid(
            "linux.personality.flags",
            format!("flag {flag:?} is not supported (the runtime spec defines none)"),
        ));
    }
    Ok(match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    })
}

pub(super) fn apply_personality(p: Option<&LinuxPersonality>) -> Result<(), Error> {
    let Some(p) = p else { return Ok(()) };
    let value = personality_value(p)?;
    // SAFETY: personality(2) only changes this process's execution domain.
    let rc = unsafe { libc::personality(value) };
    if rc == -1 {
        return Err(Error::step(
            format!("setting personality {}", p.domain()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

const IOPRIO_CLASS_SHIFT: u32 = 13;
const IOPRIO_WHO_PROCESS: libc::c_int = 1;

/// The ioprio_set(2) value of `process.ioPriority`.
pub(super) fn io_priority_value(prio: &LinuxIOPriority) -> Result<u32, Error> {
    let class: u32 = match prio.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let level = prio.priority();
    if !(0..=7).contains(&level) {
        return Err(Error::invalid(
            "process.ioPriority.priority",
            format!("{level} is outside 0..7"),
        ));
    }
    Ok(class << IOPRIO_CLASS_SHIFT | level as u32)
}

pub(super) fn apply_io_priority(prio: Option<&LinuxIOPriority>) -> Result<(), Error> {
    let Some(prio) = prio else { return Ok(()) };
    let value = io_priority_value(prio)?;
    // SAFETY: ioprio_set takes three integers and touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    if rc == -1 {
        return Err(Error::step(
            format!("setting I/O priority {} {}", prio.class(), prio.priority()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// The kernel's `struct sched_attr` (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

fn policy_number(policy: LinuxSchedulerPolicy) -> Result<u32, Error> {
    use LinuxSchedulerPolicy as P;
    Ok(match policy {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => {
            return Err(Error::invalid(
                "process.scheduler.policy",
                "SCHED_ISO is not implemented by Linux",
            ))
        }
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    })
}

fn flag_bit(flag: LinuxSchedulerFlag) -> u64 {
    use LinuxSchedulerFlag as F;
    match flag {
        F::SchedResetOnFork => 0x01,
        F::SchedFlagReclaim => 0x02,
        F::SchedFlagDLOverrun => 0x04,
        F::SchedFlagKeepPolicy => 0x08,
        F::SchedFlagKeepParams => 0x10,
        F::SchedFlagUtilClampMin => 0x20,
        F::SchedFlagUtilClampMax => 0x40,
    }
}

/// `process.scheduler` as a sched_attr, with the checks the kernel would make
/// turned into messages that name the field.
pub(super) fn sched_attr(s: &Scheduler) -> Result<SchedAttr, Error> {
    let policy = policy_number(*s.policy())?;
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(Error::invalid(
            "process.scheduler.nice",
            format!("{nice} is outside -20..19"),
        ));
    }
    let priority = s.priority().unwrap_or(0);
    let realtime = matches!(
        s.policy(),
        LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr
    );
    if realtime && !(1..=99).contains(&priority) {
        return Err(Error::invalid(
            "process.scheduler.priority",
            format!("{priority} is outside 1..99 for {}", s.policy()),
        ));
    }
    if !realtime && priority != 0 {
        return Err(Error::invalid(
            "process.scheduler.priority",
            format!("must be 0 for {}", s.policy()),
        ));
    }
    Ok(SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags: s
            .flags()
            .iter()
            .flatten()
            .map(|f| flag_bit(*f))
            .fold(0, |a, b| a | b),
        nice,
        priority: priority as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        util_min: 0,
        util_max: 0,
    })
}

pub(super) fn apply_scheduler(s: Option<&Scheduler>) -> Result<(), Error> {
    let Some(s) = s else { return Ok(()) };
    let attr = sched_attr(s)?;
    // SAFETY: `attr` is a valid, initialised sched_attr whose `size` field
    // tells the kernel how much of it to read; it outlives the call.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if rc == -1 {
        return Err(Error::step(
            format!("setting scheduler policy {}", s.policy()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Parse a CPU list such as `0-3,7` into a CpuSet (the error quotes it).
pub fn parse_cpu_list(list: &str) -> Result<CpuSet, String> {
    let bad = |why: &str| format!("{list:?} is not a CPU list: {why}");
    let mut set = CpuSet::new();
    for part in list.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let lo: usize = lo.trim().parse().map_err(|_| bad("expected numbers"))?;
        let hi: usize = hi.trim().parse().map_err(|_| bad("expected numbers"))?;
        if lo > hi || hi >= CpuSet::MAX_CPU {
            return Err(bad("bad range"));
        }
        (lo..=hi).for_each(|cpu| set.set(cpu));
    }
    Ok(set)
}

/// Both execCPUAffinity lists parse.
pub(super) fn check_cpu_affinity(aff: &ExecCPUAffinity) -> Result<(), Error> {
    let lists = [
        (aff.initial(), "process.execCPUAffinity.initial"),
        (aff.cpu_affinity_final(), "process.execCPUAffinity.final"),
    ];
    for (list, field) in lists {
        if let Some(list) = list.as_deref().filter(|l| !l.is_empty()) {
            parse_cpu_list(list).map_err(|why| Error::invalid(field, why))?;
        }
    }
    Ok(())
}

fn set_affinity(pid: Option<Pid>, list: &str, field: &str) -> Result<(), Error> {
    let set = parse_cpu_list(list).map_err(|why| Error::invalid(field, why))?;
    rustix::thread::sched_setaffinity(pid, &set)
        .map_err(|e| Error::step(format!("setting CPU affinity {list} ({field})"), e))
}

/// `execCPUAffinity.initial`: the CPUs the new process runs on before it
/// joins the container's cgroup. The caller (exec) applies it to the child
/// (`pid`, or itself with `None`) before moving it into the cgroup.
pub fn apply_initial_cpu_affinity(
    aff: Option<&ExecCPUAffinity>,
    pid: Option<i32>,
) -> Result<(), Error> {
    let Some(list) = aff
        .and_then(|a| a.initial().as_deref())
        .filter(|l| !l.is_empty())
    else {
        return Ok(());
    };
    let pid = pid.and_then(Pid::from_raw);
    set_affinity(pid, list, "process.execCPUAffinity.initial")
}

/// `execCPUAffinity.final`: the CPUs once inside the cgroup (joining a cpuset
/// cgroup resets the affinity, so this runs after the join). Absent or empty:
/// the kernel's choice is left alone, as the spec asks.
pub(super) fn apply_final_cpu_affinity(aff: Option<&ExecCPUAffinity>) -> Result<(), Error> {
    let Some(list) = aff
        .and_then(|a| a.cpu_affinity_final().as_deref())
        .filter(|l| !l.is_empty())
    else {
        return Ok(());
    };
    set_affinity(None, list, "process.execCPUAffinity.final")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn io_priority_encoding() {
        let p: LinuxIOPriority =
            serde_json::from_str(r#"{"class":"IOPRIO_CLASS_IDLE","priority":0}"#).unwrap();
        assert_eq!(io_priority_value(&p).unwrap(), 3 << 13);
        let p: LinuxIOPriority =
            serde_json::from_str(r#"{"class":"IOPRIO_CLASS_RT","priority":4}"#).unwrap();
        assert_eq!(io_priority_value(&p).unwrap(), (1 << 13) | 4);
        let p: LinuxIOPriority =
            serde_json::from_str(r#"{"class":"IOPRIO_CLASS_BE","priority":9}"#).unwrap();
        assert!(io_priority_value(&p)
            .unwrap_err()
            .to_string()
            .contains("ioPriority.priority"));
    }

    #[test]
    fn scheduler_mapping() {
        let s: Scheduler = serde_json::from_str(
            r#"{"policy":"SCHED_FIFO","priority":10,"flags":["SCHED_RESET_ON_FORK","SCHED_FLAG_KEEP_PARAMS"]}"#,
        )
        .unwrap();
        let a = sched_attr(&s).unwrap();
        assert_eq!((a.policy, a.priority, a.flags, a.size), (1, 10, 0x11, 56));
        let s: Scheduler = serde_json::from_str(r#"{"policy":"SCHED_FIFO"}"#).unwrap();
        assert!(sched_attr(&s).is_err());
        let s: Scheduler = serde_json::from_str(r#"{"policy":"SCHED_BATCH","nice":5}"#).unwrap();
        assert_eq!(sched_attr(&s).unwrap().nice, 5);
        let s: Scheduler = serde_json::from_str(r#"{"policy":"SCHED_ISO"}"#).unwrap();
        assert!(sched_attr(&s).is_err());
        let s: Scheduler = serde_json::from_str(
            r#"{"policy":"SCHED_DEADLINE","runtime":1000,"deadline":2000,"period":3000}"#,
        )
        .unwrap();
        let a = sched_attr(&s).unwrap();
        assert_eq!(
            (a.policy, a.runtime, a.deadline, a.period),
            (6, 1000, 2000, 3000)
        );
    }

    #[test]
    fn personality_domains() {
        let p: LinuxPersonality = serde_json::from_str(r#"{"domain":"LINUX32"}"#).unwrap();
        assert_eq!(personality_value(&p).unwrap(), 8);
        let p: LinuxPersonality =
            serde_json::from_str(r#"{"domain":"LINUX","flags":["ADDR_NO_RANDOMIZE"]}"#).unwrap();
        assert!(personality_value(&p)
            .unwrap_err()
            .to_string()
            .contains("ADDR_NO_RANDOMIZE"));
    }

    #[test]
    fn cpu_lists() {
        let set = parse_cpu_list("0-2,5").unwrap();
        assert!(set.is_set(0) && set.is_set(2) && set.is_set(5));
        assert!(!set.is_set(3));
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("").is_err());
    }

    #[test]
    fn oom_score_adj_range() {
        assert!(apply_oom_score_adj(Some(1001)).is_err());
        apply_oom_score_adj(None).unwrap();
    }
}
