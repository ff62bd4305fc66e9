//! Privileged tests of `keel::security` on a real kernel, without a
//! container: the test forks (std's `pre_exec`), applies a process's
//! attributes exactly as the container init does, and execs busybox, which
//! reports what it got (`/proc/self/status`, `ulimit`, a blocked syscall...).
//! The same attributes are checked from inside real containers in
//! `security_container.rs`.

#![allow(clippy::unwrap_used)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use keel::security::{self, SeccompFilter};

mod seccomp_agent;
use oci_spec::runtime::{Process, Spec};
use seccomp_agent as agent;
use serde_json::{json, Value};

const BUSYBOX: &str = "/bin/busybox";

/// What busybox printed and how it exited.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// The value of `Key:` in a /proc/self/status dump.
    fn status(&self, key: &str) -> String {
        let prefix = format!("{key}:");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {key} in {self:#?}"))
            .trim()
            .to_string()
    }
}

/// A config: the testkit's runc-like default with `edit` applied.
fn config(edit: impl FnOnce(&mut Value)) -> Value {
    let mut cfg = berth_testkit::default_config(&["true"]);
    edit(&mut cfg);
    cfg
}

/// Fork, apply the config's process attributes (and send a notify fd to
/// `listener` when given), then exec `/bin/busybox args...`.
fn run(cfg: &Value, args: &[&str], listener: Option<PathBuf>) -> std::io::Result<Ran> {
    run_probed(cfg, args, listener, None)
}

/// `run`, calling `probe` after the attributes are applied, before execve.
fn run_probed(
    cfg: &Value,
    args: &[&str],
    listener: Option<PathBuf>,
    probe: Option<fn()>,
) -> std::io::Result<Ran> {
    let spec: Spec = serde_json::from_value(cfg.clone()).unwrap();
    let process: Process = spec.process().clone().unwrap();
    let filter: Option<SeccompFilter> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(|s| security::compile_seccomp(s).unwrap());
    let mut cmd = Command::new(BUSYBOX);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before execve; the test
    // binary is glibc-linked (fork-safe malloc) and the child only makes the
    // same calls the container init makes.
    unsafe {
        cmd.pre_exec(move || {
            let notify =
                security::apply_process(&process, &spec, filter.as_ref()).map_err(os_error)?;
            if let (Some(fd), Some(path)) = (notify, listener.as_ref()) {
                let state =
                    json!({"ociVersion": "1.2.0", "id": "t", "status": "creating", "bundle": "/"});
                let msg = security::container_process_state(
                    &state,
                    std::process::id() as i32,
                    Some("meta"),
                );
                security::send_to_listener(path, fd, &msg).map_err(os_error)?;
            }
            if let Some(probe) = probe {
                probe();
            }
            Ok(())
        });
    }
    let out = cmd.output()?;
    Ok(Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Only an errno crosses `pre_exec`: keep the one under the error.
fn os_error(e: security::Error) -> std::io::Error {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        if let Some(code) = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.raw_os_error())
        {
            return std::io::Error::from_raw_os_error(code);
        }
        cause = c.source();
    }
    std::io::Error::from_raw_os_error(libc::EINVAL)
}

fn status_of(cfg: &Value) -> Ran {
    let ran = run(cfg, &["cat", "/proc/self/status"], None).unwrap();
    assert_eq!(ran.code, Some(0), "{ran:#?}");
    ran
}

fn caps(list: &[&str]) -> Value {
    json!(list)
}

#[test]
fn root_gets_the_bounding_set_and_no_new_privs() {
    if !berth_testkit::require_root() {
        return;
    }
    let cfg = config(|c| {
        c["process"]["capabilities"] = json!({
            "bounding": caps(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]),
            "effective": caps(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]),
            "permitted": caps(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]),
        });
    });
    let ran = status_of(&cfg);
    assert_eq!(ran.status("CapBnd"), "0000000000000421");
    assert_eq!(ran.status("CapEff"), "0000000000000421");
    assert_eq!(ran.status("CapPrm"), "0000000000000421");
    assert_eq!(ran.status("CapInh"), "0000000000000000");
    assert_eq!(ran.status("CapAmb"), "0000000000000000");
    assert_eq!(ran.status("NoNewPrivs"), "1");
    assert_eq!(ran.status("Seccomp"), "0");
}

#[test]
fn missing_capabilities_object_means_none() {
    if !berth_testkit::require_root() {
        return;
    }
    let cfg = config(|c| {
        c["process"].as_object_mut().unwrap().remove("capabilities");
    });
    let ran = status_of(&cfg);
    assert_eq!(ran.status("CapBnd"), "0000000000000000");
    assert_eq!(ran.status("CapEff"), "0000000000000000");
}

#[test]
fn user_switch_with_groups_and_ambient_caps() {
    if !berth_testkit::require_root() {
        return;
    }
    let cfg = config(|c| {
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 23});
        c["process"]["capabilities"] = json!({
            "bounding": caps(&["CAP_NET_BIND_SERVICE", "CAP_KILL"]),
            "effective": caps(&["CAP_NET_BIND_SERVICE"]),
            "permitted": caps(&["CAP_NET_BIND_SERVICE"]),
            "inheritable": caps(&["CAP_NET_BIND_SERVICE"]),
            "ambient": caps(&["CAP_NET_BIND_SERVICE"]),
        });
    });
    let ran = status_of(&cfg);
    assert_eq!(ran.status("Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(ran.status("Gid"), "1001\t1001\t1001\t1001");
    assert_eq!(ran.status("Groups"), "10 20");
    // A non-root uid keeps across execve exactly its ambient set.
    assert_eq!(ran.status("CapAmb"), "0000000000000400");
    assert_eq!(ran.status("CapEff"), "0000000000000400");
    assert_eq!(ran.status("CapBnd"), "0000000000000420");
    // umask 0o027 (23 decimal) as the shell reports it.
    let ran = run(&cfg, &["sh", "-c", "umask"], None).unwrap();
    assert_eq!(ran.stdout.trim(), "0027", "{ran:#?}");
}

#[test]
fn ambient_without_inheritable_is_ignored_like_runc() {
    if !berth_testkit::require_root() {
        return;
    }
    // The testkit default (as `runc spec`) lists ambient caps but no inheritable.
    let cfg = config(|c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    let ran = status_of(&cfg);
    assert_eq!(ran.status("CapAmb"), "0000000000000000");
    assert_eq!(ran.status("CapEff"), "0000000000000000");
}

#[test]
fn rlimits_are_set_and_raising_beyond_the_host_fails() {
    if !berth_testkit::require_root() {
        return;
    }
    let cfg = config(|c| {
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        ]);
    });
    let ran = run(
        &cfg,
        &["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"],
        None,
    )
    .unwrap();
    assert_eq!(
        ran.stdout.split_whitespace().collect::<Vec<_>>(),
        ["512", "768", "0"],
        "{ran:#?}"
    );

    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    let Some(hard) = hard else { return };
    let over = config(|c| {
        c["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]);
    });
    let has_sys_resource = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap() & (1 << 24) != 0)
        .unwrap();
    let res = run(&over, &["true"], None);
    if has_sys_resource {
        assert!(res.is_ok());
        return;
    }
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EPERM));
    // The message names the limit (a failed setrlimit changes nothing, so
    // this can run in the test process itself).
    let spec: Spec = serde_json::from_value(over).unwrap();
    let err = security::apply_pre_user(spec.process().as_ref().unwrap(), &spec).unwrap_err();
    assert!(
        err.to_string().starts_with("setting rlimit RLIMIT_NOFILE"),
        "{err}"
    );
}

/// Allow everything but `rules`.
fn with_seccomp(nnp: bool, uid: u32, rules: Value) -> Value {
    config(|c| {
        c["process"]["noNewPrivileges"] = json!(nnp);
        c["process"]["user"] = json!({"uid": uid, "gid": uid});
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": rules,
        });
    })
}

fn mkdir_denied() -> Value {
    json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}])
}

fn scratch() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d").to_string_lossy().into_owned();
    (dir, p)
}

#[test]
fn seccomp_errno_rule_with_and_without_no_new_privs() {
    if !berth_testkit::require_root() {
        return;
    }
    for (nnp, uid) in [(true, 0), (false, 0), (false, 1000)] {
        let cfg = with_seccomp(nnp, uid, mkdir_denied());
        let (_dir, path) = scratch();
        let ran = run(&cfg, &["mkdir", &path], None).unwrap();
        assert_eq!(ran.code, Some(1), "nnp={nnp} uid={uid}: {ran:#?}");
        assert!(ran.stderr.contains("Operation not permitted"), "{ran:#?}");
        let ran = status_of(&cfg);
        assert_eq!(ran.status("Seccomp"), "2");
        assert_eq!(ran.status("NoNewPrivs"), if nnp { "1" } else { "0" });
        // CAP_SYS_ADMIN, held for the load without no_new_privs, is gone.
        assert_eq!(
            ran.status("CapEff"),
            if uid == 0 {
                "0000000020000420"
            } else {
                "0000000000000000"
            }
        );
        assert_eq!(ran.status("CapBnd"), "0000000020000420");
    }
}

#[test]
fn seccomp_argument_conditions() {
    if !berth_testkit::require_root() {
        return;
    }
    // Two conditions on one argument: ORed (one rule each), as runc does.
    // chmod(path, mode) has mode at index 1, fchmodat(dirfd, path, mode) at 2.
    let rules = json!([
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
         "args": [{"index": 1, "value": 511, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 448, "op": "SCMP_CMP_EQ"}]},
        {"names": ["fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
         "args": [{"index": 2, "value": 511, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 448, "op": "SCMP_CMP_EQ"}]},
        // Distinct arguments: ANDed. The first test is always true, so an OR
        // would refuse every chmod; only mode 0o750 is refused.
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30,
         "args": [{"index": 0, "value": 12345, "op": "SCMP_CMP_NE"},
                  {"index": 1, "value": 0o777, "valueTwo": 0o750, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30,
         "args": [{"index": 1, "value": 12345, "op": "SCMP_CMP_NE"},
                  {"index": 2, "value": 0o777, "valueTwo": 0o750, "op": "SCMP_CMP_MASKED_EQ"}]}
    ]);
    let cfg = with_seccomp(true, 0, rules);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"").unwrap();
    let f = file.to_string_lossy();
    for (mode, want) in [
        ("777", Some("Permission denied")),
        ("700", Some("Permission denied")),
        ("750", Some("Read-only file system")),
        ("755", None),
    ] {
        let ran = run(&cfg, &["chmod", mode, &f], None).unwrap();
        match want {
            Some(text) => assert!(
                ran.code != Some(0) && ran.stderr.contains(text),
                "chmod {mode}: {ran:#?}"
            ),
            None => assert_eq!(ran.code, Some(0), "chmod {mode}: {ran:#?}"),
        }
    }
}

/// Under the filter: report to stderr the errno of syscall 1000 (newer than
/// any the profile names) and of chmod (older, not listed).
fn probe_unknown_and_unlisted() {
    for nr in [1000, libc::SYS_chmod] {
        // SAFETY: a raw syscall with null arguments; both are refused by the
        // filter before the kernel looks at them.
        unsafe { libc::syscall(nr, 0, 0) };
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        let line = format!("nr {nr}: errno {errno}\n");
        // SAFETY: writes `line` to stderr, a valid fd in the child.
        unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    }
}

#[test]
fn seccomp_default_errno_kill_and_enosys_for_new_syscalls() {
    if !berth_testkit::require_root() {
        return;
    }
    // Deny-by-default is what Docker's profile does: allow what busybox needs.
    let mut cfg = with_seccomp(true, 0, json!([]));
    cfg["linux"]["seccomp"]["defaultAction"] = json!("SCMP_ACT_ERRNO");
    cfg["linux"]["seccomp"]["defaultErrnoRet"] = json!(1);
    cfg["linux"]["seccomp"]["syscalls"] = json!([
        {"names": ["execve", "brk", "arch_prctl", "set_tid_address", "exit_group", "write", "writev",
                   "getuid", "geteuid", "getpid", "rt_sigaction", "rt_sigprocmask", "prlimit64",
                   "readlink", "mmap", "munmap", "uname", "set_robust_list", "rseq", "mprotect", "ioctl",
                   "newfstatat", "fstat", "getcwd", "open", "openat", "read", "close", "stat", "lstat",
                   "statx", "futex", "fcntl", "dup2", "getrandom", "sysinfo"],
         "action": "SCMP_ACT_ALLOW"},
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}
    ]);
    let ran = run(&cfg, &["echo", "hello"], None).unwrap();
    assert_eq!(ran.stdout.trim(), "hello", "{ran:#?}");
    // chmod is not listed: the default errno (EPERM).
    let (_dir, path) = scratch();
    let ran = run(&cfg, &["chmod", "755", "/"], None).unwrap();
    assert!(ran.stderr.contains("Operation not permitted"), "{ran:#?}");
    let ran = run(&cfg, &["mkdir", &path], None).unwrap();
    assert_eq!(ran.code, None, "killed by SIGSYS: {ran:#?}");
    // A syscall newer than the profile: ENOSYS, so libc can fall back.
    let ran = run_probed(&cfg, &["true"], None, Some(probe_unknown_and_unlisted)).unwrap();
    assert!(ran.stderr.contains("nr 1000: errno 38"), "{ran:#?}");
    assert!(
        ran.stderr
            .contains(&format!("nr {}: errno 1", libc::SYS_chmod)),
        "{ran:#?}"
    );
}

#[test]
fn seccomp_listener_gets_fd_and_state_and_answers() {
    if !berth_testkit::require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let mut cfg = with_seccomp(
        true,
        0,
        json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]),
    );
    cfg["linux"]["seccomp"]["listenerPath"] = json!(sock.to_string_lossy());
    cfg["linux"]["seccomp"]["listenerMetadata"] = json!("meta");
    let agent = agent::spawn(&sock);
    let (_d, path) = scratch();
    let ran = run(&cfg, &["mkdir", &path], Some(sock.clone())).unwrap();
    let (state, syscall) = agent.join().unwrap().unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "meta");
    assert_eq!(state["state"]["id"], "t");
    assert!(state["pid"].as_i64().unwrap() > 0);
    assert!(syscall.starts_with("mkdir"), "{syscall}");
    // The agent answered EROFS for the container.
    assert!(ran.stderr.contains("Read-only file system"), "{ran:#?}");
    assert!(!Path::new(&path).exists());
}

#[test]
fn personality_oom_score_scheduler_affinity() {
    if !berth_testkit::require_root() {
        return;
    }
    let cfg = config(|c| {
        c["linux"]["personality"] = json!({"domain": "LINUX32"});
        c["process"]["oomScoreAdj"] = json!(500);
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
        c["process"]["execCPUAffinity"] = json!({"final": "0"});
    });
    let script = "uname -m; cat /proc/self/oom_score_adj; cut -d' ' -f19,41 /proc/self/stat; \
                  grep Cpus_allowed_list /proc/self/status; ionice";
    let ran = run(&cfg, &["sh", "-c", script], None).unwrap();
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{ran:#?}");
    assert_eq!(lines[0], "i686");
    assert_eq!(lines[1], "500");
    assert_eq!(lines[2], "7 3", "nice 7, SCHED_BATCH (3)");
    assert!(lines[3].ends_with("\t0"), "{}", lines[3]);
    assert!(lines[4].starts_with("idle"), "{ran:#?}");
}
