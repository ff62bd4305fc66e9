//! Process attributes checked from inside real containers, with the runtime
//! from `KEEL_TEST_RUNTIME` (keel by default; `KEEL_TEST_RUNTIME=runc` runs
//! the same checks against runc). Differences between the two are listed in
//! docs/security.md.

#![allow(clippy::unwrap_used)]

mod common;
mod seccomp_agent;

use std::time::Duration;

use common::{bundle_with, Runtime};
use serde_json::{json, Value};

/// `Key:` of a /proc/self/status dump.
fn status_field(out: &str, key: &str) -> String {
    let prefix = format!("{key}:");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key} in {out}"))
        .trim()
        .to_string()
}

fn status_in_container(edit: impl FnOnce(&mut Value)) -> String {
    let rt = Runtime::new();
    let bundle = bundle_with(&["cat", "/proc/self/status"], edit);
    let out = rt.run_bundle(&bundle);
    out.assert_success();
    out.stdout
}

fn seccomp_profile(rules: Value) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules,
    })
}

#[test]
fn container_user_groups_caps_and_no_new_privs() {
    if !berth_testkit::require_root() {
        return;
    }
    let out = status_in_container(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20]});
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
            "effective": ["CAP_NET_BIND_SERVICE"],
            "permitted": ["CAP_NET_BIND_SERVICE"],
            "inheritable": ["CAP_NET_BIND_SERVICE"],
            "ambient": ["CAP_NET_BIND_SERVICE"],
        });
    });
    assert_eq!(status_field(&out, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out, "Gid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out, "Groups"), "10 20");
    assert_eq!(status_field(&out, "CapBnd"), "0000000000000420");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000400");
    assert_eq!(status_field(&out, "CapEff"), "0000000000000400");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    assert_eq!(status_field(&out, "Seccomp"), "0");
}

#[test]
fn container_root_default_caps() {
    if !berth_testkit::require_root() {
        return;
    }
    // The testkit's runc-spec default: three caps, ambient without inheritable.
    let out = status_in_container(|_| {});
    assert_eq!(status_field(&out, "CapBnd"), "0000000020000420");
    assert_eq!(status_field(&out, "CapEff"), "0000000020000420");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000000");
}

#[test]
fn container_rlimits_and_umask() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let bundle = bundle_with(&["sh", "-c", "ulimit -n; ulimit -Hn; umask"], |c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768}]);
        c["process"]["user"]["umask"] = json!(0o077);
    });
    let out = rt.run_bundle(&bundle);
    out.assert_success();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["512", "768", "0077"]
    );
}

#[test]
fn container_rlimit_above_the_host_hard_limit_fails() {
    if !berth_testkit::require_root() {
        return;
    }
    let Some(hard) = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum else {
        return;
    };
    let rt = Runtime::new();
    let bundle = bundle_with(&["true"], |c| {
        c["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]);
    });
    let out = rt.run_bundle(&bundle);
    if rt.is_keel() {
        let err = out.assert_failure();
        assert!(err.contains("RLIMIT_NOFILE"), "{err}");
    } else {
        eprintln!("{}: code {} stderr {}", rt.name(), out.code, out.stderr);
    }
}

#[test]
fn container_seccomp_errno_with_and_without_no_new_privs() {
    if !berth_testkit::require_root() {
        return;
    }
    let rules = json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]);
    for nnp in [true, false] {
        let rt = Runtime::new();
        let script = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir /tmp/x";
        let bundle = bundle_with(&["sh", "-c", script], |c| {
            c["root"]["readonly"] = json!(false);
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["linux"]["seccomp"] = seccomp_profile(rules.clone());
        });
        let out = rt.run_bundle(&bundle);
        assert_eq!(out.code, 1, "{out:#?}");
        assert_eq!(status_field(&out.stdout, "Seccomp"), "2");
        assert_eq!(
            status_field(&out.stdout, "NoNewPrivs"),
            if nnp { "1" } else { "0" }
        );
        assert!(out.stderr.contains("Operation not permitted"), "{out:#?}");
    }
}

#[test]
fn container_seccomp_listener() {
    if !berth_testkit::require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let agent = seccomp_agent::spawn(&sock);
    let rt = Runtime::new();
    let bundle = bundle_with(&["mkdir", "/tmp/x"], |c| {
        c["root"]["readonly"] = json!(false);
        let mut s =
            seccomp_profile(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]));
        s["listenerPath"] = json!(sock.to_string_lossy());
        s["listenerMetadata"] = json!("hello-agent");
        c["linux"]["seccomp"] = s;
    });
    let out = rt.run_bundle(&bundle);
    let (state, syscall) = agent.join().unwrap().unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "hello-agent");
    assert!(state["pid"].as_i64().unwrap() > 0, "{state}");
    assert!(
        state["state"]["id"].as_str().is_some_and(|s| !s.is_empty()),
        "{state}"
    );
    assert!(syscall.starts_with("mkdir"), "{syscall}");
    assert!(out.stderr.contains("Read-only file system"), "{out:#?}");
}

#[test]
fn container_personality_oom_scheduler() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let script =
        "uname -m; cat /proc/self/oom_score_adj; cut -d' ' -f19,41 /proc/self/stat; ionice";
    let bundle = bundle_with(&["sh", "-c", script], |c| {
        c["linux"]["personality"] = json!({"domain": "LINUX32"});
        c["process"]["oomScoreAdj"] = json!(300);
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 6});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    });
    let out = rt.run_bundle(&bundle);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.get(1), Some(&"300"), "{out:#?}");
    // runc 1.1 predates personality, scheduler and ioPriority (runtime-spec 1.2).
    if rt.is_keel() {
        assert_eq!(lines.first(), Some(&"i686"), "{out:#?}");
        assert_eq!(lines.get(2), Some(&"6 3"), "{out:#?}");
        assert!(
            lines.get(3).is_some_and(|l| l.starts_with("idle")),
            "{out:#?}"
        );
    } else {
        eprintln!("{} personality/scheduler/ioPriority: {lines:?}", rt.name());
    }
}

#[test]
fn container_apparmor_profile_without_apparmor() {
    if !berth_testkit::require_root() || keel::security::apparmor_enabled() {
        return;
    }
    let rt = Runtime::new();
    let bundle = bundle_with(&["true"], |c| {
        c["process"]["apparmorProfile"] = json!("keel-test")
    });
    let out = rt.run_bundle(&bundle);
    if rt.is_keel() {
        let err = out.assert_failure();
        assert!(err.contains("AppArmor is not enabled"), "{err}");
    } else {
        eprintln!(
            "{} with apparmorProfile and no AppArmor: code {} {}",
            rt.name(),
            out.code,
            out.stderr
        );
    }
}

#[test]
fn exec_cap_user_and_seccomp() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let rules = json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]);
    // The init lets go of the captured stdio at once, so `run -d` returns.
    let script = "exec sleep 30 </dev/null >/dev/null 2>&1";
    let bundle = bundle_with(&["sh", "-c", script], |c| {
        c["linux"]["seccomp"] = seccomp_profile(rules)
    });
    let c = rt.container("sec-exec");
    c.run(&bundle, &["-d"]).assert_success();
    assert!(c.wait_status("running", Duration::from_secs(5)));

    let out = c.cmd(
        "exec",
        &["--cap", "CAP_SYS_ADMIN"],
        &["cat", "/proc/self/status"],
    );
    out.assert_success();
    let eff = u64::from_str_radix(&status_field(&out.stdout, "CapEff"), 16).unwrap();
    assert_ne!(eff & (1 << 21), 0, "CAP_SYS_ADMIN added by --cap: {eff:#x}");
    assert_eq!(status_field(&out.stdout, "Seccomp"), "2");

    let out = c.cmd("exec", &["-u", "1000:1000"], &["cat", "/proc/self/status"]);
    out.assert_success();
    assert_eq!(status_field(&out.stdout, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out.stdout, "Gid"), "1000\t1000\t1000\t1000");
}

#[test]
fn unknown_capability_name_is_refused_naming_it() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let bundle = bundle_with(&["true"], |c| {
        c["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_FLY"]);
    });
    let out = rt.run_bundle(&bundle);
    if rt.is_keel() {
        let err = out.assert_failure();
        assert!(
            err.contains("CAP_FLY") && err.contains("process.capabilities.bounding"),
            "{err}"
        );
    } else {
        // runc 1.1 warns "ignoring unknown or unavailable capabilities" and runs.
        eprintln!(
            "{} with CAP_FLY: code {} {}",
            rt.name(),
            out.code,
            out.stderr
        );
    }
}

#[test]
fn user_namespace_user_switch_and_seccomp_without_no_new_privs() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let rules = json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]);
    let bundle = bundle_with(&["cat", "/proc/self/status"], |c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10]});
        c["linux"]["seccomp"] = seccomp_profile(rules);
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
    });
    // The container's root (host uid 100000) must reach its rootfs.
    use std::os::unix::fs::PermissionsExt;
    for dir in [bundle.path().to_path_buf(), bundle.rootfs()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = rt.run_bundle(&bundle);
    if !rt.is_keel() {
        eprintln!(
            "{} in a user namespace: code {} {}",
            rt.name(),
            out.code,
            out.stderr
        );
        return;
    }
    out.assert_success();
    assert_eq!(status_field(&out.stdout, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out.stdout, "Groups"), "10");
    assert_eq!(status_field(&out.stdout, "NoNewPrivs"), "0");
    assert_eq!(status_field(&out.stdout, "Seccomp"), "2");
    assert_eq!(status_field(&out.stdout, "CapEff"), "0000000000000000");
    assert_eq!(status_field(&out.stdout, "CapBnd"), "0000000020000420");
}
