//! Unit tests for the seccomp mapping and compilation.
#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

fn parse(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).unwrap()
}

#[test]
fn actions_map_like_runc() {
    use LinuxSeccompAction as A;
    assert_eq!(
        action(A::ScmpActKill, None, "f").unwrap(),
        ScmpAction::KillThread
    );
    assert_eq!(
        action(A::ScmpActKillProcess, None, "f").unwrap(),
        ScmpAction::KillProcess
    );
    assert_eq!(
        action(A::ScmpActErrno, None, "f").unwrap(),
        ScmpAction::Errno(libc::EPERM)
    );
    assert_eq!(
        action(A::ScmpActErrno, Some(38), "f").unwrap(),
        ScmpAction::Errno(38)
    );
    assert_eq!(
        action(A::ScmpActTrace, None, "f").unwrap(),
        ScmpAction::Trace(1)
    );
    assert_eq!(
        action(A::ScmpActNotify, None, "f").unwrap(),
        ScmpAction::Notify
    );
    assert_eq!(action(A::ScmpActLog, None, "f").unwrap(), ScmpAction::Log);
    let err = action(A::ScmpActErrno, Some(70000), "x.errnoRet").unwrap_err();
    assert!(err.to_string().contains("x.errnoRet"), "{err}");
}

#[test]
fn unknown_action_is_a_spec_error() {
    let err = serde_json::from_value::<LinuxSeccomp>(json!({"defaultAction": "SCMP_ACT_FLY"}))
        .unwrap_err();
    assert!(err.to_string().contains("SCMP_ACT_FLY"), "{err}");
}

#[test]
fn arches_map() {
    let a: Arch = serde_json::from_value(json!("SCMP_ARCH_X86_64")).unwrap();
    assert_eq!(arch(a).unwrap(), ScmpArch::X8664);
    let a: Arch = serde_json::from_value(json!("SCMP_ARCH_AARCH64")).unwrap();
    assert_eq!(arch(a).unwrap(), ScmpArch::Aarch64);
    let a: Arch = serde_json::from_value(json!("SCMP_ARCH_SH")).unwrap();
    assert!(arch(a).unwrap_err().to_string().contains("architectures"));
}

#[test]
fn operators_map() {
    let arg: LinuxSeccompArg = serde_json::from_value(
        json!({"index": 1, "value": 0xff, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}),
    )
    .unwrap();
    assert_eq!(
        condition(&arg, "f").unwrap(),
        ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(0xff), 2)
    );
    let arg: LinuxSeccompArg =
        serde_json::from_value(json!({"index": 0, "value": 5, "op": "SCMP_CMP_GE"})).unwrap();
    assert_eq!(
        condition(&arg, "f").unwrap(),
        ScmpArgCompare::new(0, ScmpCompareOp::GreaterEqual, 5)
    );
    let arg: LinuxSeccompArg =
        serde_json::from_value(json!({"index": 6, "value": 5, "op": "SCMP_CMP_EQ"})).unwrap();
    assert!(condition(&arg, "linux.seccomp.syscalls[0].args")
        .unwrap_err()
        .to_string()
        .contains("index 6"));
}

#[test]
fn flags_map() {
    use LinuxSeccompFilterFlag as F;
    assert_eq!(
        kernel_flags(
            &[F::SeccompFilterFlagLog, F::SeccompFilterFlagSpecAllow],
            false
        ),
        6
    );
    assert_eq!(
        kernel_flags(&[F::SeccompFilterFlagWaitKillableRecv], true),
        32 | 8
    );
    assert_eq!(kernel_flags(&[F::SeccompFilterFlagTsync], true), 1 | 8 | 16);
}

#[test]
fn compiles_rules_args_and_skips_unknown_names() {
    let s = parse(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat", "no_such_syscall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_KILL_PROCESS",
             "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}
        ]
    }));
    let f = compile_seccomp(&s).unwrap();
    assert!(f.instructions() > 10);
    assert_eq!(f.flags, FLAG_LOG);
    assert!(!f.has_listener());
}

#[test]
fn notify_needs_a_listener_path_and_no_runtime_syscalls() {
    let s = parse(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
    let err = compile_seccomp(&s).unwrap_err().to_string();
    assert!(err.contains("listenerPath"), "{err}");
    let s = parse(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert!(compile_seccomp(&s).unwrap().has_listener());
    let s = parse(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
        "syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert!(compile_seccomp(&s)
        .unwrap_err()
        .to_string()
        .contains("sendmsg"));
    let s = parse(json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}));
    assert!(compile_seccomp(&s)
        .unwrap_err()
        .to_string()
        .contains("defaultAction"));
}

/// Timing of the Docker/Podman-style default profile (printed, not asserted):
/// `cargo test -p keel --lib seccomp_compile_timing -- --nocapture`.
#[test]
fn seccomp_compile_timing() {
    let Ok(text) = std::fs::read_to_string("/usr/share/containers/seccomp.json") else {
        eprintln!("no /usr/share/containers/seccomp.json: skipping");
        return;
    };
    let mut s: LinuxSeccomp = serde_json::from_str(&text).unwrap();
    // The profile's `archMap` is Docker's format; as Docker hands it to the
    // runtime it lists the native arch and its sub-arches.
    s.set_architectures(Some(vec![
        Arch::ScmpArchX86_64,
        Arch::ScmpArchX86,
        Arch::ScmpArchX32,
    ]));
    let rules: usize = s.syscalls().iter().flatten().map(|r| r.names().len()).sum();
    let t = std::time::Instant::now();
    let f = compile_seccomp(&s).unwrap();
    let compile = t.elapsed();
    let dir = tempfile::tempdir().unwrap();
    super::super::compile_seccomp_cached(&s, dir.path()).unwrap();
    let t = std::time::Instant::now();
    let cached = super::super::compile_seccomp_cached(&s, dir.path()).unwrap();
    let hit = t.elapsed();
    assert_eq!(cached, f);
    eprintln!(
        "seccomp: {rules} syscall names -> {} BPF instructions; compile {compile:?}, cache hit {hit:?}",
        f.instructions()
    );
}
