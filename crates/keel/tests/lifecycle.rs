//! The lifecycle as users and containerd drive it, checked from inside real
//! containers. Runs against any runtime: `KEEL_TEST_RUNTIME=runc cargo test`.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{assert_init_reaped, bundle_with, busybox, pid_alive, Runtime};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn run_returns_the_exit_code_and_output() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let out = rt.run_bundle(&busybox(&["sh", "-c", "echo out; echo err >&2; exit 3"]));
    assert_eq!(out.code, 3, "{out:#?}");
    assert_eq!(out.stdout, "out\n");
    assert!(out.stderr.contains("err"), "{out:#?}");
    assert!(rt.list_ids().is_empty(), "run must delete the container");
}

#[test]
fn run_sets_hostname_and_namespaces() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let out = rt.run_bundle(&busybox(&[
        "sh",
        "-c",
        "hostname; echo $$; readlink /proc/self/ns/pid",
    ]));
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "keel");
    assert_eq!(lines[1], "1", "the process is pid 1 of a new pid namespace");
    let host = std::fs::read_link("/proc/self/ns/pid").unwrap();
    assert_ne!(lines[2], host.to_string_lossy());
}

#[test]
fn foreground_run_killed_returns_128_plus_signal() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&["sleep", "100"]);
    let c = rt.container("sig");
    let child = rt
        .command()
        .args(["run", "--bundle"])
        .arg(b.path())
        .arg(&c.id)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(c.wait_status("running", WAIT), "never running");
    c.cmd("kill", &[], &["KILL"]).assert_success();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137));
}

#[test]
fn foreground_run_forwards_signals() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&[
        "sh",
        "-c",
        "trap 'exit 42' TERM; while true; do sleep 0.05; done",
    ]);
    let c = rt.container("fwd");
    let child = rt
        .command()
        .args(["run", "--bundle"])
        .arg(b.path())
        .arg(&c.id)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(c.wait_status("running", WAIT));
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: signalling the runtime process this test spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(42));
}

#[test]
fn create_start_kill_delete() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&["sleep", "100"]);
    let c = rt.container("life");
    c.create(&b, &[]).assert_success();
    let st = c.state().unwrap();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], c.id.as_str());
    assert_eq!(
        st["bundle"],
        b.path().canonicalize().unwrap().to_str().unwrap()
    );
    let pid = c.pid();
    assert!(pid_alive(pid));
    c.start().assert_success();
    assert_eq!(c.status(), "running");
    let again = c.start();
    again.assert_failure();
    c.cmd("kill", &[], &["9"]).assert_success();
    assert!(c.wait_status("stopped", WAIT));
    c.cmd("delete", &[], &[]).assert_success();
    assert!(c.state().is_none());
    assert!(rt.list_ids().is_empty());
    std::thread::sleep(Duration::from_millis(50));
    assert_init_reaped(pid);
}

#[test]
fn containerd_style_invocation_and_json_log() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&["sleep", "100"]);
    let c = rt.container("ctrd");
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log.json");
    let pidf = tmp.path().join("init.pid");
    let g = |extra: &[&str]| {
        let mut v: Vec<String> = vec![
            "--log".into(),
            log.display().to_string(),
            "--log-format".into(),
            "json".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    rt.exec(&g(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--pid-file",
        pidf.to_str().unwrap(),
        &c.id,
    ]))
    .assert_success();
    let pid: i32 = std::fs::read_to_string(&pidf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, c.pid());
    rt.exec(&g(&["start", &c.id])).assert_success();
    let st: serde_json::Value =
        serde_json::from_str(&rt.exec(&g(&["state", &c.id])).stdout).unwrap();
    assert_eq!(st["status"], "running");
    assert_eq!(st["pid"], pid);
    // A failing command leaves a JSON error line in the log.
    rt.exec(&g(&["start", &c.id])).assert_failure();
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(last["time"].is_string());
    rt.exec(&g(&["kill", &c.id, "9"])).assert_success();
    assert!(c.wait_status("stopped", WAIT));
    rt.exec(&g(&["delete", &c.id])).assert_success();
    assert!(rt.list_ids().is_empty());
}

#[test]
fn exec_joins_the_container() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&["sleep", "100"]);
    let c = rt.container("exec");
    c.create(&b, &[]).assert_success();
    c.start().assert_success();
    let out = c.exec(&[
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; echo $$",
    ]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0].trim(), "sleep 100");
    assert_eq!(lines[1], "keel");
    assert_ne!(lines[2], "1");
    assert_eq!(c.exec(&["sh", "-c", "exit 7"]).code, 7);
    let out = c.cmd(
        "exec",
        &["-e", "FOO=bar", "--cwd", "/dev", "-u", "1000:1000"],
        &["sh", "-c", "echo $FOO $(pwd) $(id -u):$(id -g)"],
    );
    out.assert_success();
    assert_eq!(out.stdout.trim(), "bar /dev 1000:1000");
}

#[test]
fn exec_detached_with_process_file() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&["sleep", "100"]);
    let c = rt.container("execd");
    c.create(&b, &[]).assert_success();
    c.start().assert_success();
    let tmp = tempfile::tempdir().unwrap();
    let proc_json = tmp.path().join("process.json");
    let pidf = tmp.path().join("exec.pid");
    let process = serde_json::json!({
        "args": ["sleep", "77"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "env": ["PATH=/bin"]
    });
    std::fs::write(&proc_json, process.to_string()).unwrap();
    c.cmd(
        "exec",
        &[
            "--process",
            proc_json.to_str().unwrap(),
            "--detach",
            "--pid-file",
            pidf.to_str().unwrap(),
        ],
        &[],
    )
    .assert_success();
    let pid: i32 = std::fs::read_to_string(&pidf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(pid));
    let out = c.exec(&["ps"]);
    assert!(out.stdout.contains("sleep 77"), "{out:#?}");
    let ps = c.cmd("ps", &["--format", "json"], &[]);
    ps.assert_success();
    let pids: Vec<i32> = serde_json::from_str(ps.stdout.trim()).unwrap();
    assert!(pids.contains(&pid) && pids.contains(&c.pid()), "{pids:?}");
}

#[test]
fn pause_and_resume() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&["sleep", "100"]);
    let c = rt.container("pause");
    c.create(&b, &[]).assert_success();
    c.start().assert_success();
    c.cmd("pause", &[], &[]).assert_success();
    assert_eq!(c.status(), "paused");
    let pid = c.pid();
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(!st.is_empty());
    c.cmd("resume", &[], &[]).assert_success();
    assert_eq!(c.status(), "running");
    c.cmd("resume", &[], &[]).assert_failure();
    // A paused container can be force-deleted (thawed so init can die).
    c.cmd("pause", &[], &[]).assert_success();
    let t = std::time::Instant::now();
    c.force_delete().assert_success();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "delete --force of a paused container hung"
    );
    assert!(c.state().is_none());
}

#[test]
fn kill_accepts_names_and_numbers() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&["sh", "-c", "trap 'echo usr1 >> /dev/shm/sig' USR1; trap 'echo hup >> /dev/shm/sig' HUP; while true; do sleep 0.05; done"]);
    let c = rt.container("kill");
    c.create(&b, &[]).assert_success();
    c.start().assert_success();
    std::thread::sleep(Duration::from_millis(200));
    // One at a time: a standard signal sent twice before delivery is one.
    for sig in ["SIGUSR1", "HUP", "10"] {
        c.cmd("kill", &[], &[sig]).assert_success();
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = c.exec(&["cat", "/dev/shm/sig"]);
    let got: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(got.iter().filter(|l| **l == "usr1").count(), 2, "{out:#?}");
    assert!(got.contains(&"hup"));
    c.cmd("kill", &["--all"], &["KILL"]).assert_success();
    assert!(c.wait_status("stopped", WAIT));
}

#[test]
fn delete_of_a_running_container_needs_force() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&["sleep", "100"]);
    let c = rt.container("del");
    c.create(&b, &[]).assert_success();
    c.start().assert_success();
    let pid = c.pid();
    let err = c.cmd("delete", &[], &[]).assert_failure().to_owned();
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    assert_eq!(c.status(), "running");
    c.cmd("delete", &["--force"], &[]).assert_success();
    assert!(c.state().is_none());
    assert_init_gone(pid);
}

#[test]
fn delete_of_a_created_container_kills_init() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let c = rt.container("delc");
    let b = busybox(&["sleep", "100"]);
    c.create(&b, &[]).assert_success();
    let pid = c.pid();
    c.cmd("delete", &[], &[]).assert_success();
    assert_init_gone(pid);
}

/// After a delete: the init `pid` has no readable stat, or is a zombie.
#[track_caller]
fn assert_init_gone(pid: i32) {
    std::thread::sleep(Duration::from_millis(50));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "init still alive: {stat}"
    );
}

#[test]
fn list_formats() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let c = rt.container("list");
    let b = busybox(&["sleep", "100"]);
    c.create(&b, &[]).assert_success();
    assert_eq!(rt.list_ids(), vec![c.id.clone()]);
    let json: serde_json::Value =
        serde_json::from_str(&rt.exec(&["list", "-f", "json"]).stdout).unwrap();
    assert_eq!(json[0]["id"], c.id.as_str());
    assert_eq!(json[0]["status"], "created");
    let table = rt.exec(&["list"]).stdout;
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains(&c.id));
}

#[test]
fn user_namespace_maps_ids() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = bundle_with(
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u",
        ],
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
            c["linux"]["uidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["gidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            // sysfs cannot be mounted in a user namespace without a new netns owner; keep it simple.
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.retain(|m| m["type"] != "sysfs" && m["type"] != "cgroup");
        },
    );
    let out = rt.run_bundle(&b);
    out.assert_success();
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "100000", "65536", "0", "100000", "65536", "0"],
        "{out:#?}"
    );
}

#[test]
fn hooks_run_in_order_with_state() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("hooks.log");
    let hook = |name: &str| {
        serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("read s; echo \"{name} $s\" >> {}", log.display())]
        })
    };
    let b = bundle_with(&["true"], |c| {
        c["hooks"] = serde_json::json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")]
        });
    });
    let c = rt.container("hooks");
    c.create(&b, &[]).assert_success();
    c.start().assert_success();
    assert!(c.wait_status("stopped", WAIT));
    c.cmd("delete", &[], &[]).assert_success();
    let text = std::fs::read_to_string(&log).unwrap();
    let names: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        ["prestart", "createRuntime", "poststart", "poststop"],
        "{text}"
    );
    for line in text.lines() {
        let json: serde_json::Value =
            serde_json::from_str(line.split_once(' ').unwrap().1).unwrap();
        assert_eq!(json["id"], c.id.as_str());
    }
}

#[test]
fn failing_hook_fails_create_and_leaves_nothing() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = bundle_with(&["true"], |c| {
        c["hooks"] = serde_json::json!({"createRuntime": [{"path": "/bin/false"}]});
    });
    let c = rt.container("hookfail");
    c.create(&b, &[]).assert_failure();
    assert!(rt.list_ids().is_empty());
    assert!(!rt.root().join(&c.id).exists());
}

#[test]
fn exec_enters_the_root_of_a_no_pivot_container() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&["sleep", "100"]);
    let c = rt.container("nopivot");
    c.create(&b, &["--no-pivot"]).assert_success();
    c.start().assert_success();
    let out = c.exec(&[
        "sh",
        "-c",
        "test -e /etc/debian_version && echo HOST; test -x /bin/busybox && echo CONTAINER",
    ]);
    out.assert_success();
    assert_eq!(out.stdout.trim(), "CONTAINER", "{out:#?}");
}
