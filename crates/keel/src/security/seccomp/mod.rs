//! `linux.seccomp`: compile with libseccomp into a BPF program, load it with
//! the raw seccomp(2) call.
//!
//! Compiling and loading are split: the program is plain data (it can be
//! built in the parent, cached on disk and loaded in the child), and loading
//! ourselves lets every kernel flag (LOG, SPEC_ALLOW, TSYNC,
//! WAIT_KILLABLE_RECV, NEW_LISTENER) be passed straight through, and keeps
//! libseccomp from setting no_new_privs behind our back.

use std::io::{Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

use super::Error;

mod cache;
mod enosys;
mod notify;

pub use cache::compile_seccomp_cached;
pub use notify::{container_process_state, send_to_listener};

const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
const FLAG_NEW_LISTENER: u32 = 8;
const FLAG_TSYNC_ESRCH: u32 = 16;
const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// Syscall arguments a rule may test (the kernel passes six).
const MAX_ARGS: usize = 6;

/// Syscalls the runtime itself makes after the filter is loaded (handing the
/// notify fd to the parent, waiting for `start`, dropping a held capability).
/// SCMP_ACT_NOTIFY on one of them would hang the container before the agent
/// has the notify fd.
const RUNTIME_SYSCALLS_AFTER_LOAD: &[&str] = &[
    "sendmsg",
    "sendto",
    "recvmsg",
    "recvfrom",
    "read",
    "write",
    "close",
    "openat",
    "capset",
    "exit",
    "exit_group",
];

/// A seccomp filter compiled from `linux.seccomp`, ready to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompFilter {
    /// `struct sock_filter` instructions, native endian, 8 bytes each.
    pub(super) program: Vec<u8>,
    /// SECCOMP_FILTER_FLAG_* for seccomp(2).
    pub(super) flags: u32,
}

impl SeccompFilter {
    /// Whether loading returns a notify fd for `listenerPath`.
    pub fn has_listener(&self) -> bool {
        self.flags & FLAG_NEW_LISTENER != 0
    }

    /// Number of BPF instructions.
    pub fn instructions(&self) -> usize {
        self.program.len() / std::mem::size_of::<libc::sock_filter>()
    }
}

/// Compile `linux.seccomp` into a loadable filter (validation errors name the
/// offending syscall/arch/action).
pub fn compile_seccomp(seccomp: &LinuxSeccomp) -> Result<SeccompFilter, Error> {
    let listener = check_notify(seccomp)?;
    let ctx = build_context(seccomp)?;
    let program = with_enosys_prologue(seccomp, export(&ctx)?)?;
    Ok(SeccompFilter {
        program,
        flags: kernel_flags(seccomp.flags().as_deref().unwrap_or_default(), listener),
    })
}

fn sc_err(what: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> Error {
    let what = what.into();
    move |source| Error::Seccomp { what, source }
}

/// An OCI action as libseccomp's; ERRNO and TRACE default to EPERM as runc.
pub(super) fn action(
    act: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: &str,
) -> Result<ScmpAction, Error> {
    let ret = || -> Result<u16, Error> {
        let v = errno_ret.unwrap_or(libc::EPERM as u32);
        u16::try_from(v)
            .map_err(|_| Error::invalid(field, format!("errno {v} does not fit in 16 bits")))
    };
    use LinuxSeccompAction as A;
    Ok(match act {
        A::ScmpActKill | A::ScmpActKillThread => ScmpAction::KillThread,
        A::ScmpActKillProcess => ScmpAction::KillProcess,
        A::ScmpActTrap => ScmpAction::Trap,
        A::ScmpActErrno => ScmpAction::Errno(i32::from(ret()?)),
        A::ScmpActNotify => ScmpAction::Notify,
        A::ScmpActTrace => ScmpAction::Trace(ret()?),
        A::ScmpActLog => ScmpAction::Log,
        A::ScmpActAllow => ScmpAction::Allow,
    })
}

/// An OCI architecture as libseccomp's.
pub(super) fn arch(a: Arch) -> Result<ScmpArch, Error> {
    use Arch as A;
    Ok(match a {
        A::ScmpArchNative => ScmpArch::Native,
        A::ScmpArchX86 => ScmpArch::X86,
        A::ScmpArchX86_64 => ScmpArch::X8664,
        A::ScmpArchX32 => ScmpArch::X32,
        A::ScmpArchArm => ScmpArch::Arm,
        A::ScmpArchAarch64 => ScmpArch::Aarch64,
        A::ScmpArchMips => ScmpArch::Mips,
        A::ScmpArchMips64 => ScmpArch::Mips64,
        A::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        A::ScmpArchMipsel => ScmpArch::Mipsel,
        A::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        A::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        A::ScmpArchPpc => ScmpArch::Ppc,
        A::ScmpArchPpc64 => ScmpArch::Ppc64,
        A::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        A::ScmpArchS390 => ScmpArch::S390,
        A::ScmpArchS390x => ScmpArch::S390X,
        A::ScmpArchParisc => ScmpArch::Parisc,
        A::ScmpArchParisc64 => ScmpArch::Parisc64,
        A::ScmpArchRiscv64 => ScmpArch::Riscv64,
        A::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        A::ScmpArchM68k => ScmpArch::M68k,
        other => {
            return Err(Error::invalid(
                "linux.seccomp.architectures",
                format!("{other:?} is not supported by this libseccomp"),
            ))
        }
    })
}

/// An OCI argument condition as libseccomp's. For SCMP_CMP_MASKED_EQ `value`
/// is the mask and `valueTwo` the value compared with, as runc reads them.
pub(super) fn condition(arg: &LinuxSeccompArg, field: &str) -> Result<ScmpArgCompare, Error> {
    if arg.index() >= MAX_ARGS {
        return Err(Error::invalid(
            field,
            format!("argument index {} is not below {MAX_ARGS}", arg.index()),
        ));
    }
    use LinuxSeccompOperator as O;
    let op = match arg.op() {
        O::ScmpCmpNe => ScmpCompareOp::NotEqual,
        O::ScmpCmpLt => ScmpCompareOp::Less,
        O::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        O::ScmpCmpEq => ScmpCompareOp::Equal,
        O::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        O::ScmpCmpGt => ScmpCompareOp::Greater,
        O::ScmpCmpMaskedEq => {
            let datum = arg.value_two().unwrap_or(0);
            return Ok(ScmpArgCompare::new(
                arg.index() as u32,
                ScmpCompareOp::MaskedEqual(arg.value()),
                datum,
            ));
        }
    };
    Ok(ScmpArgCompare::new(arg.index() as u32, op, arg.value()))
}

/// The kernel flags for seccomp(2).
pub(super) fn kernel_flags(flags: &[LinuxSeccompFilterFlag], listener: bool) -> u32 {
    use LinuxSeccompFilterFlag as F;
    let mut bits = flags.iter().fold(0, |acc, f| {
        acc | match f {
            F::SeccompFilterFlagLog => FLAG_LOG,
            F::SeccompFilterFlagTsync => FLAG_TSYNC,
            F::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            F::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        }
    });
    if listener {
        bits |= FLAG_NEW_LISTENER;
        // TSYNC and NEW_LISTENER together need TSYNC_ESRCH (the return
        // value cannot be both a thread id and an fd).
        if bits & FLAG_TSYNC != 0 {
            bits |= FLAG_TSYNC_ESRCH;
        }
    }
    bits
}

/// Whether the filter uses SCMP_ACT_NOTIFY (and so needs a listener), with
/// the combinations that cannot work refused.
fn check_notify(seccomp: &LinuxSeccomp) -> Result<bool, Error> {
    if seccomp.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(Error::invalid(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    let mut uses_notify = false;
    for rule in seccomp.syscalls().iter().flatten() {
        if rule.action() != LinuxSeccompAction::ScmpActNotify {
            continue;
        }
        uses_notify = true;
        if let Some(name) = rule
            .names()
            .iter()
            .find(|n| RUNTIME_SYSCALLS_AFTER_LOAD.contains(&n.as_str()))
        {
            return Err(Error::invalid(
                "linux.seccomp.syscalls",
                format!("SCMP_ACT_NOTIFY on {name:?} is not supported: the runtime needs it after loading the filter"),
            ));
        }
    }
    if uses_notify && seccomp.listener_path().is_none() {
        return Err(Error::invalid(
            "linux.seccomp.listenerPath",
            "must be set when a rule uses SCMP_ACT_NOTIFY",
        ));
    }
    Ok(uses_notify)
}

fn build_context(seccomp: &LinuxSeccomp) -> Result<ScmpFilterContext, Error> {
    let default = action(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )?;
    let mut ctx = ScmpFilterContext::new(default).map_err(sc_err("creating the filter"))?;
    // A binary tree of syscall numbers instead of a linear list: compiling
    // is slower (it is cached), but loading is about twice as fast (the
    // kernel emulates the filter for every syscall to fill its action cache)
    // and so is every syscall the container makes.
    ctx.set_ctl_optimize(2)
        .map_err(sc_err("asking for a binary-tree filter"))?;
    for a in seccomp.architectures().iter().flatten() {
        let scmp = arch(*a)?;
        if !ctx
            .is_arch_present(scmp)
            .map_err(sc_err(format!("checking architecture {a:?}")))?
        {
            ctx.add_arch(scmp)
                .map_err(sc_err(format!("adding architecture {a:?}")))?;
        }
    }
    for (i, rule) in seccomp.syscalls().iter().flatten().enumerate() {
        add_rule(&mut ctx, rule, default, i)?;
    }
    Ok(ctx)
}

/// One `syscalls[i]` entry: every name gets the same action and conditions.
/// Conditions on distinct arguments are ANDed in one rule; when an argument
/// index repeats, each condition becomes its own rule (ORed), as runc does,
/// since libseccomp cannot AND two tests of one argument.
fn add_rule(
    ctx: &mut ScmpFilterContext,
    rule: &LinuxSyscall,
    default: ScmpAction,
    i: usize,
) -> Result<(), Error> {
    let field = format!("linux.seccomp.syscalls[{i}]");
    let act = action(
        rule.action(),
        rule.errno_ret(),
        &format!("{field}.errnoRet"),
    )?;
    if act == default {
        return Ok(()); // libseccomp refuses rules that repeat the default
    }
    let args = rule.args().as_deref().unwrap_or_default();
    let conds = args
        .iter()
        .map(|a| condition(a, &format!("{field}.args")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = [0u8; MAX_ARGS];
    args.iter().for_each(|a| seen[a.index()] += 1);
    let groups: Vec<&[ScmpArgCompare]> = if seen.iter().any(|n| *n > 1) {
        conds.chunks(1).collect()
    } else {
        vec![&conds[..]]
    };
    for name in rule.names() {
        let Ok(sys) = ScmpSyscall::from_name(name) else {
            crate::log::debug(|| format!("seccomp: skipping unknown syscall {name:?}"));
            continue;
        };
        for group in &groups {
            ctx.add_rule_conditional(act, sys, group)
                .map_err(sc_err(format!("{field}: adding a rule for {name:?}")))?;
        }
    }
    Ok(())
}

/// The architecture keel runs on, as libseccomp's "native".
fn native_arch() -> Option<ScmpArch> {
    Some(match std::env::consts::ARCH {
        "x86_64" => ScmpArch::X8664,
        "x86" => ScmpArch::X86,
        "aarch64" => ScmpArch::Aarch64,
        "arm" => ScmpArch::Arm,
        "riscv64" => ScmpArch::Riscv64,
        "s390x" => ScmpArch::S390X,
        "loongarch64" => ScmpArch::Loongarch64,
        "powerpc64" if cfg!(target_endian = "little") => ScmpArch::Ppc64Le,
        "powerpc64" => ScmpArch::Ppc64,
        _ => return None,
    })
}

/// For deny-by-default profiles, answer ENOSYS to syscalls newer than any the
/// profile names (see `enosys`).
fn with_enosys_prologue(seccomp: &LinuxSeccomp, program: Vec<u8>) -> Result<Vec<u8>, Error> {
    use LinuxSeccompAction as A;
    if matches!(seccomp.default_action(), A::ScmpActAllow | A::ScmpActLog) {
        return Ok(program);
    }
    let mut archs: Vec<ScmpArch> = native_arch().into_iter().collect();
    for a in seccomp.architectures().iter().flatten() {
        archs.push(arch(*a)?);
    }
    let names: Vec<&str> = seccomp
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|r| r.names().iter().map(String::as_str))
        .collect();
    Ok(match enosys::prologue(&archs, &names) {
        Some(prologue) => enosys::prepend(&prologue, &program),
        None => program,
    })
}

/// The filter's BPF program, through a memfd (libseccomp 2.5 exports to fds).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>, Error> {
    let io = |e: std::io::Error| Error::step("exporting the seccomp program", e);
    let fd = rustix::fs::memfd_create("keel-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| io(e.into()))?;
    ctx.export_bpf(&fd)
        .map_err(sc_err("exporting the BPF program"))?;
    let mut file = std::fs::File::from(fd);
    file.rewind().map_err(io)?;
    let mut program = Vec::new();
    file.read_to_end(&mut program).map_err(io)?;
    Ok(program)
}

/// Load the filter. With `listenerPath` set the filter is loaded with
/// SECCOMP_FILTER_FLAG_NEW_LISTENER and the notify fd is returned so the
/// caller can send it (with the container state) to the listener.
///
/// Without no_new_privs the caller must still hold CAP_SYS_ADMIN (see the
/// order in the module docs).
pub fn load_seccomp(filter: &SeccompFilter) -> Result<Option<OwnedFd>, Error> {
    let mut insns: Vec<libc::sock_filter> = filter
        .program
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let len = u16::try_from(insns.len()).map_err(|_| {
        Error::invalid(
            "linux.seccomp",
            format!(
                "the filter has {} instructions, more than BPF allows",
                insns.len()
            ),
        )
    })?;
    let prog = libc::sock_fprog {
        len,
        filter: insns.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `len` valid instructions in `insns`, which
    // outlives the call; the kernel copies the program.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            filter.flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(load_error(filter.flags, std::io::Error::last_os_error()));
    }
    if !filter.has_listener() {
        return Ok(None);
    }
    let fd = i32::try_from(rc).map_err(|_| {
        Error::step(
            "loading the seccomp filter",
            std::io::Error::other("bad notify fd"),
        )
    })?;
    // SAFETY: with NEW_LISTENER seccomp(2) returns a new fd that we own.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

fn load_error(flags: u32, e: std::io::Error) -> Error {
    let what = match e.raw_os_error() {
        Some(libc::EACCES) => {
            "loading the seccomp filter: without noNewPrivileges this needs CAP_SYS_ADMIN"
                .to_string()
        }
        Some(libc::EINVAL) => {
            format!("loading the seccomp filter (flags {flags:#x}: is every flag supported by this kernel?)")
        }
        _ => "loading the seccomp filter".to_string(),
    };
    Error::step(what, e)
}

#[cfg(test)]
mod tests;
