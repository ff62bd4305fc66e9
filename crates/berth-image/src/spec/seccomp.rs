//! Docker's default seccomp profile, as data.
//!
//! The profile is an allow-list: every syscall not named here fails with
//! `EPERM`. Some entries only apply when the container holds a capability
//! (`mount` needs `CAP_SYS_ADMIN`, `reboot` needs `CAP_SYS_BOOT`, …), some only
//! on certain architectures, and a few are allowed only with particular
//! arguments (`clone` without namespace flags, `personality` with the values
//! glibc and `setarch` use, `socket` except `AF_ALG` and `AF_VSOCK`).
//! `io_uring` is not allowed (Docker blocks it since 25.0). [`profile`] resolves
//! those conditions for one capability set and one architecture, the way the
//! Docker daemon does when it generates a container's `linux.seccomp`.

use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg,
    LinuxSeccompArgBuilder, LinuxSeccompOperator, LinuxSyscall,
};

/// `EPERM`: what a syscall outside the profile returns.
const EPERM: u32 = 1;
/// `ENOSYS`: what `clone3` returns without `CAP_SYS_ADMIN`, so that libcs fall
/// back to `clone`, whose flags the filter can inspect.
const ENOSYS: u32 = 38;
/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
/// CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET`: flags an unprivileged
/// container may not pass to `clone`.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;
/// `AF_ALG` (kernel crypto sockets) and `AF_VSOCK`: the socket families
/// the profile refuses.
const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;
/// `personality(2)` values allowed: `PER_LINUX`, `PER_LINUX32`,
/// `UNAME26`, `PER_LINUX32|UNAME26`, and the query value `0xffffffff`.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// The CPU family a profile is generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    X86,
    Arm,
    S390,
    Ppc,
    Mips,
    Riscv,
    Other,
}

impl Family {
    /// The family of the machine we run on.
    pub fn host() -> Self {
        match std::env::consts::ARCH {
            "x86_64" | "x86" => Self::X86,
            "aarch64" | "arm" => Self::Arm,
            "s390x" => Self::S390,
            "powerpc64" => Self::Ppc,
            "mips" | "mips64" => Self::Mips,
            "riscv64" => Self::Riscv,
            _ => Self::Other,
        }
    }

    /// The seccomp architectures a filter for this family must cover (the
    /// native one plus the compat ABIs a process may switch to).
    fn architectures(self) -> Vec<Arch> {
        match self {
            Self::X86 => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
            Self::Arm => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
            Self::S390 => vec![Arch::ScmpArchS390x, Arch::ScmpArchS390],
            Self::Ppc => vec![Arch::ScmpArchPpc64le],
            Self::Mips => vec![
                Arch::ScmpArchMips64,
                Arch::ScmpArchMips,
                Arch::ScmpArchMips64n32,
            ],
            Self::Riscv => vec![Arch::ScmpArchRiscv64],
            Self::Other => Vec::new(),
        }
    }
}

/// Syscalls every container may make, grouped by what they are for.
#[rustfmt::skip]
const ALWAYS_ALLOWED: &[&[&str]] = &[
    // files: open, read, write, metadata
    &[
        "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range",
        "creat", "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64",
        "cachestat", "fallocate", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl",
        "fcntl64", "fdatasync", "flock", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64",
        "fsync", "ftruncate", "ftruncate64", "futimesat", "getcwd", "getdents", "getdents64",
        "lchown", "lchown32", "link", "linkat", "_llseek", "lseek", "lstat", "lstat64", "mkdir",
        "mkdirat", "mknod", "mknodat", "name_to_handle_at", "newfstatat", "open", "openat",
        "openat2", "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read",
        "readahead", "readlink", "readlinkat", "readv", "rename", "renameat", "renameat2", "rmdir",
        "sendfile", "sendfile64", "splice", "stat", "stat64", "statfs", "statfs64", "statx",
        "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "tee", "truncate",
        "truncate64", "umask", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64",
        "utimes", "vmsplice", "write", "writev",
    ],
    // extended attributes
    &[
        "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "lgetxattr",
        "listxattr", "llistxattr", "lremovexattr", "lsetxattr", "removexattr", "setxattr",
        "getxattrat", "listxattrat", "removexattrat", "setxattrat",
    ],
    // waiting for events: poll, epoll, inotify, eventfd, aio (not io_uring)
    &[
        "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
        "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark",
        "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel",
        "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup",
        "io_submit", "ioctl", "_newselect", "pipe", "pipe2", "poll", "ppoll", "ppoll_time64", "pselect6",
        "pselect6_time64", "select",
    ],
    // processes, threads and credentials
    &[
        "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "getcpu",
        "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
        "getgroups32", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getresgid",
        "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage",
        "getsid", "get_thread_area", "gettid", "getuid", "getuid32", "ioprio_get", "ioprio_set",
        "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
        "membarrier", "pidfd_open", "pidfd_send_signal", "prctl", "prlimit64", "process_mrelease",
        "restart_syscall", "rseq", "sched_getaffinity", "sched_getattr", "sched_getparam",
        "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
        "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
        "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
        "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
        "setgroups32", "setpgid", "setpriority", "setregid", "setregid32", "setresgid",
        "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
        "set_robust_list", "setsid", "set_thread_area", "set_tid_address", "setuid", "setuid32",
        "sysinfo", "tgkill", "tkill", "ugetrlimit", "uname", "uretprobe", "vfork", "wait4",
        "waitid", "waitpid",
    ],
    // memory
    &[
        "brk", "madvise", "memfd_create", "memfd_secret", "mincore", "mlock", "mlock2", "mlockall",
        "mmap", "mmap2", "mprotect", "mremap", "msync", "munlock", "munlockall", "munmap",
        "map_shadow_stack", "mseal", "pkey_alloc", "pkey_free", "pkey_mprotect",
        "remap_file_pages",
    ],
    // signals
    &[
        "pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
        "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
        "rt_tgsigqueueinfo", "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn",
    ],
    // clocks and timers (reading them; setting them needs CAP_SYS_TIME)
    &[
        "adjtimex", "alarm", "clock_adjtime", "clock_adjtime64", "clock_getres",
        "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
        "clock_nanosleep_time64", "getitimer", "gettimeofday", "nanosleep", "setitimer", "time",
        "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
        "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
        "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
    ],
    // futexes
    &["futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake"],
    // reading mount information (listmount/statmount, 6.8+) and CPU features
    &["listmount", "statmount", "riscv_hwprobe"],
    // SysV and POSIX IPC
    &[
        "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
        "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl",
        "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop",
        "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
    ],
    // sockets (`socket` itself is argument-filtered below)
    &[
        "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
        "listen", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg",
        "sendmsg", "sendto", "setsockopt", "shutdown", "socketcall", "socketpair",
    ],
    // randomness
    &["getrandom"],
    // tracing one's own children; the kernel (4.8+) confines it to the
    // container's user and pid namespace
    &["process_vm_readv", "process_vm_writev", "ptrace"],
];

/// Syscalls allowed only on some architectures.
const ARCH_ALLOWED: &[(Family, &[&str])] = &[
    (Family::X86, &["arch_prctl", "modify_ldt"]),
    (
        Family::Arm,
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    ),
    (Family::Ppc, &["sync_file_range2", "swapcontext"]),
    (
        Family::S390,
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
    ),
    (Family::Riscv, &["riscv_flush_icache"]),
];

/// Syscalls a capability unlocks (added with `--cap-add`).
const CAP_ALLOWED: &[(Capability, &[&str])] = &[
    (Capability::DacReadSearch, &["open_by_handle_at"]),
    (
        Capability::SysAdmin,
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    (Capability::SysBoot, &["reboot"]),
    (Capability::SysChroot, &["chroot"]),
    (
        Capability::SysModule,
        &["delete_module", "init_module", "finit_module"],
    ),
    (Capability::SysPacct, &["acct"]),
    (
        Capability::SysPtrace,
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    (Capability::SysRawio, &["iopl", "ioperm"]),
    (
        Capability::SysTime,
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    (Capability::SysTtyConfig, &["vhangup"]),
    (
        Capability::SysNice,
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    (Capability::Syslog, &["syslog"]),
    (Capability::Bpf, &["bpf"]),
    (Capability::Perfmon, &["perf_event_open"]),
];

/// Docker's default profile for a container holding `caps` (its bounding
/// set) on a machine of `family`.
pub fn profile(caps: &Capabilities, family: Family) -> LinuxSeccomp {
    let mut rules = vec![allow(ALWAYS_ALLOWED.iter().flat_map(|group| group.iter()))];
    // any family but AF_ALG and AF_VSOCK: below 38, 39, above 40
    for (op, family) in [
        (LinuxSeccompOperator::ScmpCmpLt, AF_ALG),
        (LinuxSeccompOperator::ScmpCmpEq, AF_ALG + 1),
        (LinuxSeccompOperator::ScmpCmpGt, AF_VSOCK),
    ] {
        rules.push(allow_if(&["socket"], arg(0, op, family)));
    }
    for value in PERSONALITIES {
        rules.push(allow_if(
            &["personality"],
            arg(0, LinuxSeccompOperator::ScmpCmpEq, value),
        ));
    }
    for (arch, names) in ARCH_ALLOWED {
        if *arch == family {
            rules.push(allow(names.iter()));
        }
    }
    for (cap, names) in CAP_ALLOWED {
        if caps.contains(cap) {
            rules.push(allow(names.iter()));
        }
    }
    if !caps.contains(&Capability::SysAdmin) {
        rules.extend(unprivileged_clone(family));
    }
    let mut profile = LinuxSeccomp::default();
    profile
        .set_default_action(LinuxSeccompAction::ScmpActErrno)
        .set_default_errno_ret(Some(EPERM))
        .set_architectures(Some(family.architectures()))
        .set_syscalls(Some(rules));
    profile
}

/// Without `CAP_SYS_ADMIN`: `clone` only without namespace flags (the flags
/// are the second argument on s390), and `clone3` reports `ENOSYS`.
fn unprivileged_clone(family: Family) -> [LinuxSyscall; 2] {
    let flags_index = if family == Family::S390 { 1 } else { 0 };
    // masked-equal: (flags & CLONE_NAMESPACE_FLAGS) == 0
    let no_namespaces = arg(
        flags_index,
        LinuxSeccompOperator::ScmpCmpMaskedEq,
        CLONE_NAMESPACE_FLAGS,
    );
    let clone = allow_if(&["clone"], no_namespaces);
    let mut clone3 = syscall(&["clone3"], LinuxSeccompAction::ScmpActErrno);
    clone3.set_errno_ret(Some(ENOSYS));
    [clone, clone3]
}

fn syscall<'a>(
    names: impl IntoIterator<Item = &'a &'a str>,
    action: LinuxSeccompAction,
) -> LinuxSyscall {
    let mut rule = LinuxSyscall::default();
    rule.set_names(names.into_iter().map(|name| (*name).to_owned()).collect());
    rule.set_action(action);
    rule
}

fn allow<'a>(names: impl IntoIterator<Item = &'a &'a str>) -> LinuxSyscall {
    syscall(names, LinuxSeccompAction::ScmpActAllow)
}

fn allow_if(names: &[&str], condition: LinuxSeccompArg) -> LinuxSyscall {
    let mut rule = allow(names.iter());
    rule.set_args(Some(vec![condition]));
    rule
}

fn arg(index: usize, op: LinuxSeccompOperator, value: u64) -> LinuxSeccompArg {
    // Every field of the builder has a default, so `build` cannot fail.
    LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value)
        .value_two(0u64)
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn allowed_unconditionally(profile: &LinuxSeccomp) -> HashSet<String> {
        let rules = profile.syscalls().as_deref().unwrap_or_default();
        rules
            .iter()
            .filter(|rule| {
                rule.action() == LinuxSeccompAction::ScmpActAllow && rule.args().is_none()
            })
            .flat_map(|rule| rule.names().iter().cloned())
            .collect()
    }

    fn caps(list: &[Capability]) -> Capabilities {
        list.iter().copied().collect()
    }

    #[test]
    fn no_syscall_is_listed_twice_in_the_base_allow_list() {
        let mut seen = HashSet::new();
        for name in ALWAYS_ALLOWED.iter().flat_map(|group| group.iter()) {
            assert!(seen.insert(*name), "{name} listed twice");
        }
        assert!(
            seen.len() > 300,
            "allow list looks truncated: {}",
            seen.len()
        );
    }

    #[test]
    fn capabilities_unlock_their_syscalls() {
        // (capability held, syscall, allowed unconditionally?)
        let cases: &[(&[Capability], &str, bool)] = &[
            (&[], "read", true),
            (&[], "mount", false),
            (&[Capability::SysAdmin], "mount", true),
            (&[], "reboot", false),
            (&[Capability::SysBoot], "reboot", true),
            (&[], "chroot", false),
            (&[Capability::SysChroot], "chroot", true),
            (&[], "clone", false),
            (&[Capability::SysAdmin], "clone", true),
            (&[Capability::SysTime], "clock_settime", true),
            (&[], "init_module", false),
            (&[], "kexec_load", false),
            (&[Capability::SysPtrace], "kcmp", true),
            (&[Capability::Bpf], "bpf", true),
            (&[], "io_uring_setup", false),
            (&[Capability::SysAdmin], "io_uring_setup", false),
            (&[], "mseal", true),
        ];
        for (held, name, expected) in cases {
            let got = allowed_unconditionally(&profile(&caps(held), Family::X86)).contains(*name);
            assert_eq!(got, *expected, "{name} with {held:?}");
        }
    }

    #[test]
    fn clone_is_filtered_without_sys_admin() {
        let p = profile(&caps(&[Capability::Chown]), Family::X86);
        let rules = p.syscalls().as_deref().unwrap_or_default();
        let clone = rules
            .iter()
            .find(|r| r.names() == &["clone".to_owned()])
            .expect("a clone rule");
        let args = clone.args().as_deref().unwrap_or_default();
        assert_eq!(args[0].index(), 0);
        assert_eq!(args[0].value(), CLONE_NAMESPACE_FLAGS);
        assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        let clone3 = rules
            .iter()
            .find(|r| r.names() == &["clone3".to_owned()])
            .expect("a clone3 rule");
        assert_eq!(clone3.errno_ret(), Some(ENOSYS));
        let s390 = profile(&caps(&[]), Family::S390);
        let rules = s390.syscalls().as_deref().unwrap_or_default();
        let clone = rules
            .iter()
            .find(|r| r.names() == &["clone".to_owned()])
            .expect("clone");
        assert_eq!(clone.args().as_deref().unwrap_or_default()[0].index(), 1);
    }

    #[test]
    fn socket_refuses_af_alg_and_af_vsock_only() {
        let p = profile(&caps(&[]), Family::X86);
        let rules = p.syscalls().as_deref().unwrap_or_default();
        let allowed = |family: u64| {
            rules
                .iter()
                .filter(|r| r.names() == &["socket".to_owned()])
                .flat_map(|r| r.args().as_deref().unwrap_or_default())
                .any(|a| match a.op() {
                    LinuxSeccompOperator::ScmpCmpLt => family < a.value(),
                    LinuxSeccompOperator::ScmpCmpEq => family == a.value(),
                    LinuxSeccompOperator::ScmpCmpGt => family > a.value(),
                    _ => false,
                })
        };
        for (family, expected) in [
            (1, true),
            (2, true),
            (10, true),
            (16, true),
            (37, true),
            (38, false),
            (39, true),
            (40, false),
            (41, true),
            (45, true),
        ] {
            assert_eq!(allowed(family), expected, "socket family {family}");
        }
    }

    #[test]
    fn arch_specific_syscalls_follow_the_family() {
        let x86 = allowed_unconditionally(&profile(&caps(&[]), Family::X86));
        assert!(x86.contains("arch_prctl"));
        assert!(!x86.contains("set_tls"));
        let arm = allowed_unconditionally(&profile(&caps(&[]), Family::Arm));
        assert!(arm.contains("set_tls"));
        assert!(!arm.contains("arch_prctl"));
    }

    #[test]
    fn serialises_as_an_oci_seccomp_section() {
        let json = serde_json::to_value(profile(&caps(&[]), Family::X86)).expect("json");
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        assert_eq!(json["architectures"][0], "SCMP_ARCH_X86_64");
    }
}
