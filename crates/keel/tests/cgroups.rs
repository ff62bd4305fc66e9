//! keel's cgroups, end to end: limits from `linux.resources` seen from the
//! host's cgroup files and from inside the container, the device cgroup,
//! pause/resume, `events --stats`, `ps`, removal on delete and
//! `--systemd-cgroup`. Runs on hybrid v1 (this machine) and on pure cgroup v2
//! (`tests/vm-v2.sh`); also against runc (`KEEL_TEST_RUNTIME=runc`).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{bundle_with, cgroup_dir, pure_v2, read_trimmed as read, Container, Runtime};

const WAIT: Duration = Duration::from_secs(20);

/// Every cgroup directory of `pid` on the host.
fn all_cgroup_dirs(pid: i32) -> Vec<PathBuf> {
    if pure_v2() {
        return vec![cgroup_dir(pid, "")];
    }
    ["memory", "pids", "cpu", "devices", "freezer"]
        .iter()
        .map(|c| cgroup_dir(pid, c))
        .collect()
}

/// (file name, path inside the container) of a controller file, by version.
fn memory_max() -> (&'static str, &'static str) {
    if pure_v2() {
        ("memory.max", "/sys/fs/cgroup/memory.max")
    } else {
        (
            "memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        )
    }
}

/// A started `sleep` container with `resources` (and `edit` on the config).
fn started<'a>(
    rt: &'a Runtime,
    resources: serde_json::Value,
    edit: impl FnOnce(&mut serde_json::Value),
) -> (Container<'a>, berth_testkit::Bundle, i32) {
    let b = bundle_with(&["sleep", "1000"], |c| {
        c["linux"]["resources"] = resources;
        edit(c);
    });
    let c = rt.container("cg");
    c.create(&b, &[]).assert_success();
    c.start().assert_success();
    assert!(c.wait_status("running", WAIT), "never running");
    let pid = c.pid();
    (c, b, pid)
}

#[test]
fn limits_are_applied_and_visible_inside() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let res = serde_json::json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 42},
        "cpu": {"quota": 50000, "period": 100000},
        "devices": [{"allow": false, "access": "rwm"}]
    });
    let (c, _b, pid) = started(&rt, res, |_| {});
    let (mem_file, mem_inside) = memory_max();
    assert_eq!(read(&cgroup_dir(pid, "memory"), mem_file), "67108864");
    assert_eq!(read(&cgroup_dir(pid, "pids"), "pids.max"), "42");
    if pure_v2() {
        assert_eq!(read(&cgroup_dir(pid, "cpu"), "cpu.max"), "50000 100000");
    } else {
        let cpu = cgroup_dir(pid, "cpu");
        assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
    }
    // From inside: the container's own cgroup files (cgroup namespace and
    // /sys/fs/cgroup mount).
    let out = c.exec(&["cat", mem_inside]);
    out.assert_success();
    assert_eq!(out.stdout.trim(), "67108864", "{out:#?}");
    let pids_inside = if pure_v2() {
        "/sys/fs/cgroup/pids.max"
    } else {
        "/sys/fs/cgroup/pids/pids.max"
    };
    let out = c.exec(&["cat", pids_inside]);
    assert_eq!(out.stdout.trim(), "42", "{out:#?}");
    if pure_v2() {
        // cgroup namespace: the container's cgroup is its root
        let out = c.exec(&["cat", "/proc/self/cgroup"]);
        assert_eq!(out.stdout.trim(), "0::/", "{out:#?}");
    }
}

#[test]
fn pids_limit_stops_forks_inside() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let res = serde_json::json!({"pids": {"limit": 4}});
    let b = bundle_with(
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6; do sleep 1 & done; wait; echo done",
        ],
        |c| c["linux"]["resources"] = res,
    );
    let out = rt.run_bundle(&b);
    assert!(
        out.stderr.contains("fork") || out.stderr.contains("resource"),
        "forks beyond pids.limit must fail: {out:#?}"
    );
}

/// A shell that tries to open `path` for writing (the device cgroup is
/// checked at open) and prints the outcome.
fn try_open(path: &str) -> String {
    format!("if ( exec 3>{path} ) 2>/dev/null; then echo {path}:open; else echo {path}:denied; fi")
}

#[test]
fn device_cgroup_denies_unlisted_and_allows_listed() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    // Unlisted: /dev/kmsg (1:11) made with mknod inside the container.
    let script = format!(
        "mknod /kn c 1 11 && echo made; {}; {}",
        try_open("/kn"),
        try_open("/dev/null")
    );
    let b = bundle_with(&["sh", "-c", &script], |c| {
        c["root"]["readonly"] = false.into();
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push("CAP_MKNOD".into());
        }
    });
    let out = rt.run_bundle(&b);
    out.assert_success();
    assert!(
        out.stdout.contains("made"),
        "mknod (m) is allowed: {out:#?}"
    );
    assert!(out.stdout.contains("/kn:denied"), "{out:#?}");
    assert!(out.stdout.contains("/dev/null:open"), "{out:#?}");
    // Listed in linux.devices: created and allowed.
    let b = bundle_with(&["sh", "-c", &try_open("/dev/kmsg")], |c| {
        c["linux"]["devices"] = serde_json::json!([
            {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 384, "uid": 0, "gid": 0}
        ]);
    });
    let out = rt.run_bundle(&b);
    out.assert_success();
    assert!(out.stdout.contains("/dev/kmsg:open"), "{out:#?}");
}

fn proc_state(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Poll until `f` holds or WAIT passes.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn pause_freezes_and_resume_thaws() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    // A busy init: State R while running, not R while frozen.
    let b = bundle_with(&["sh", "-c", "while :; do :; done"], |_| {});
    let c = rt.container("pause");
    c.create(&b, &[]).assert_success();
    c.start().assert_success();
    let pid = c.pid();
    assert!(
        eventually(|| proc_state(pid).starts_with('R')),
        "never busy"
    );
    c.cmd("pause", &[], &[]).assert_success();
    assert_eq!(c.status(), "paused");
    std::thread::sleep(Duration::from_millis(300));
    let frozen = proc_state(pid);
    assert!(!frozen.starts_with('R'), "frozen init runs: {frozen}");
    let state = if pure_v2() {
        read(&cgroup_dir(pid, ""), "cgroup.freeze")
    } else {
        read(&cgroup_dir(pid, "freezer"), "freezer.state")
    };
    assert!(state == "1" || state == "FROZEN", "{state}");
    c.exec(&["true"]).assert_failure();
    c.cmd("resume", &[], &[]).assert_success();
    assert_eq!(c.status(), "running");
    assert!(
        eventually(|| proc_state(pid).starts_with('R')),
        "not thawed"
    );
    c.cmd("kill", &[], &["KILL"]).assert_success();
}

#[test]
fn events_stats_and_ps() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let res = serde_json::json!({"memory": {"limit": 67108864}, "pids": {"limit": 42}});
    let (c, _b, pid) = started(&rt, res, |_| {});
    let out = c.cmd("events", &["--stats"], &[]);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("events --stats is not one JSON object: {e}: {out:#?}"));
    assert_eq!(v["type"], "stats", "{v}");
    assert_eq!(v["id"], c.id.as_str(), "{v}");
    let d = &v["data"];
    assert!(d["pids"]["current"].as_u64().unwrap_or(0) >= 1, "{v}");
    assert_eq!(d["pids"]["limit"], 42, "{v}");
    assert_eq!(d["memory"]["usage"]["limit"], 67108864u64, "{v}");
    assert!(
        d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0, "{v}");
    // ps: the table has the init pid; -f json is the pid list
    let out = c.cmd("ps", &[], &[]);
    out.assert_success();
    assert!(out.stdout.starts_with("UID"), "{out:#?}");
    assert!(
        out.stdout
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(&pid.to_string())),
        "{out:#?}"
    );
    let out = c.cmd("ps", &["-f", "json"], &[]);
    out.assert_success();
    let pids: Vec<i32> = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(pids, vec![pid]);
}

#[test]
fn cgroups_are_removed_on_delete() {
    if !berth_testkit::require_root() {
        return;
    }
    let id = berth_testkit::unique_id("cgdel");
    // declared first: dropped after the container and the runtime
    let _parent = RemoveParent(format!("keel-test-parent-{id}"));
    let rt = Runtime::new();
    let res = serde_json::json!({"pids": {"limit": 42}});
    let path = format!("/keel-test-parent-{id}/{id}");
    let (c, _b, pid) = started(&rt, res, |c| {
        c["linux"]["cgroupsPath"] = path.clone().into()
    });
    let dirs = all_cgroup_dirs(pid);
    for d in &dirs {
        assert!(d.ends_with(path.trim_start_matches('/')), "{}", d.display());
        assert!(d.is_dir(), "{}", d.display());
    }
    c.cmd("delete", &["--force"], &[]).assert_success();
    for d in &dirs {
        assert!(!d.exists(), "left behind: {}", d.display());
        let parent = d.parent().unwrap();
        assert!(!parent.exists(), "parent left behind: {}", parent.display());
    }
}

/// Removes the (empty) top-level cgroup `name` from every hierarchy on drop:
/// a runtime that leaves the parents it created (runc does) must not leave
/// them on the host.
struct RemoveParent(String);

impl Drop for RemoveParent {
    fn drop(&mut self) {
        let root = Path::new("/sys/fs/cgroup");
        let _ = std::fs::remove_dir(root.join(&self.0));
        for h in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(h.path().join(&self.0));
        }
    }
}

#[test]
fn systemd_cgroup_path() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    if !rt.is_keel() {
        return; // runc would ask systemd, which this machine does not run
    }
    let b = bundle_with(&["sleep", "1000"], |_| {});
    let c = rt.container("sd");
    let path = format!("system.slice:keel:{}", c.id);
    let mut cfg = berth_testkit::default_config(&["sleep", "1000"]);
    cfg["linux"]["cgroupsPath"] = path.into();
    b.write_config(&cfg).unwrap();
    let out = rt.exec(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        &c.id,
    ]);
    out.assert_success();
    let pid = c.pid();
    let want = format!("system.slice/keel-{}.scope", c.id);
    let dirs = all_cgroup_dirs(pid);
    for d in &dirs {
        assert!(d.ends_with(&want), "{}", d.display());
    }
    rt.exec(&["--systemd-cgroup", "delete", "--force", &c.id])
        .assert_success();
    for d in &dirs {
        assert!(!d.exists(), "left behind: {}", d.display());
    }
}

#[test]
fn bad_process_values_fail_before_any_cgroup() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let id = berth_testkit::unique_id("cgbad");
    let b = bundle_with(&["true"], |c| {
        c["process"]["oomScoreAdj"] = 5000.into();
        c["linux"]["cgroupsPath"] = format!("/{id}").into();
    });
    let out = rt.exec(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let err = out.assert_failure();
    assert!(err.contains("oomScoreAdj"), "{err}");
    let dir = if pure_v2() {
        PathBuf::from(format!("/sys/fs/cgroup/{id}"))
    } else {
        PathBuf::from(format!("/sys/fs/cgroup/memory/{id}"))
    };
    assert!(!dir.exists(), "{}", dir.display());
    assert!(rt.list_ids().is_empty());
}

#[test]
fn exec_checks_process_values_and_sets_cpu_affinity() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let (c, b, _pid) = started(&rt, serde_json::json!({}), |_| {});
    let mut p =
        berth_testkit::default_config(&["sh", "-c", "grep Cpus_allowed_list /proc/self/status"])
            ["process"]
            .clone();
    // A bad value is refused before anything is joined.
    p["oomScoreAdj"] = 5000.into();
    let pfile = b.path().join("process.json");
    std::fs::write(&pfile, p.to_string()).unwrap();
    let out = c.cmd("exec", &["-p", pfile.to_str().unwrap()], &[]);
    assert!(out.assert_failure().contains("oomScoreAdj"), "{out:#?}");
    // execCPUAffinity: initial set before the clone, final once inside.
    let last = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
    p.as_object_mut().unwrap().remove("oomScoreAdj");
    p["execCPUAffinity"] = serde_json::json!({"initial": "0", "final": last.to_string()});
    std::fs::write(&pfile, p.to_string()).unwrap();
    let out = c.cmd("exec", &["-p", pfile.to_str().unwrap()], &[]);
    out.assert_success();
    assert_eq!(
        out.stdout.split_whitespace().nth(1),
        Some(last.to_string().as_str()),
        "{out:#?}"
    );
}

#[test]
fn features_tell_the_cgroup_truth() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    if !rt.is_keel() {
        return;
    }
    let out = rt.exec(&["features"]);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let cg = &v["linux"]["cgroup"];
    assert_eq!(cg["v1"], true);
    assert_eq!(cg["v2"], true);
    assert_eq!(cg["rdma"], true, "rdma.max is written on v1 and v2");
    assert_eq!(
        cg["systemd"], false,
        "no systemd driver, only the path form"
    );
    assert_eq!(cg["systemdUser"], false);
}
