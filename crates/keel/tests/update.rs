//! `keel update`: flags and `-r FILE` change the container's cgroup files,
//! and each update merges into the resources of the previous ones. Runs on
//! hybrid v1 and on pure cgroup v2 (`tests/vm-v2.sh`).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{bundle_with, cgroup_dir, pure_v2, read_trimmed as read, Runtime};

fn memory_limit(pid: i32) -> String {
    let file = if pure_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    read(&cgroup_dir(pid, "memory"), file)
}

fn cpu_max(pid: i32) -> String {
    let d = cgroup_dir(pid, "cpu");
    if pure_v2() {
        read(&d, "cpu.max")
    } else {
        format!(
            "{} {}",
            read(&d, "cpu.cfs_quota_us"),
            read(&d, "cpu.cfs_period_us")
        )
    }
}

#[test]
fn update_changes_the_cgroup_files_and_merges() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = bundle_with(&["sleep", "1000"], |c| {
        c["linux"]["resources"] = serde_json::json!({
            "memory": {"limit": 67108864},
            "pids": {"limit": 42},
            "devices": [{"allow": false, "access": "rwm"}]
        });
    });
    let c = rt.container("upd");
    c.create(&b, &[]).assert_success();
    c.start().assert_success();
    assert!(c.wait_status("running", Duration::from_secs(20)));
    let pid = c.pid();
    assert_eq!(memory_limit(pid), "67108864");

    c.cmd("update", &["--memory", "128m"], &[]).assert_success();
    assert_eq!(memory_limit(pid), "134217728");
    assert_eq!(read(&cgroup_dir(pid, "pids"), "pids.max"), "42");

    c.cmd("update", &["--pids-limit", "20"], &[])
        .assert_success();
    assert_eq!(read(&cgroup_dir(pid, "pids"), "pids.max"), "20");
    assert_eq!(memory_limit(pid), "134217728", "earlier update kept");

    let r = b.path().join("resources.json");
    std::fs::write(&r, r#"{"cpu": {"quota": 20000, "period": 100000}}"#).unwrap();
    c.cmd("update", &["-r", r.to_str().unwrap()], &[])
        .assert_success();
    assert_eq!(cpu_max(pid), "20000 100000");
    assert_eq!(read(&cgroup_dir(pid, "pids"), "pids.max"), "20");
    assert_eq!(memory_limit(pid), "134217728");

    // Seen from inside too.
    let inside = if pure_v2() {
        "/sys/fs/cgroup/pids.max"
    } else {
        "/sys/fs/cgroup/pids/pids.max"
    };
    let out = c.exec(&["cat", inside]);
    assert_eq!(out.stdout.trim(), "20", "{out:#?}");
    // The device rules survive the updates: /dev/null works, an unlisted
    // device is still refused (the `sleep` bundle has no CAP_MKNOD, so
    // the node is made on the host, in the rootfs).
    let node = b.rootfs().join("kn");
    let made = std::process::Command::new("mknod")
        .arg(&node)
        .args(["c", "1", "11"])
        .status()
        .unwrap();
    assert!(made.success());
    let out = c.exec(&[
        "sh",
        "-c",
        "echo x >/dev/null && echo null:ok; (exec 3>/kn) 2>/dev/null && echo kn:open || echo kn:denied",
    ]);
    assert!(out.stdout.contains("null:ok"), "{out:#?}");
    assert!(out.stdout.contains("kn:denied"), "{out:#?}");
    if pure_v2() && rt.is_keel() {
        // each update replaced the device program instead of adding one
        let n = berth_cgroups::attached_device_filters(&cgroup_dir(pid, "")).unwrap();
        assert_eq!(n, 1, "device programs attached");
    }
}

#[test]
fn update_of_unknown_or_bad_input_fails() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    rt.exec(&["update", "--memory", "1m", "no-such-container"])
        .assert_failure();
    let b = bundle_with(&["sleep", "1000"], |_| {});
    let c = rt.container("updbad");
    c.create(&b, &[]).assert_success();
    let r = b.path().join("bad.json");
    std::fs::write(&r, r#"{"memory": {"limit": "lots"}}"#).unwrap();
    let err = c.cmd("update", &["-r", r.to_str().unwrap()], &[]);
    assert!(err.assert_failure().contains("memory"), "{err:#?}");
    // A resctrl schema for a container without linux.intelRdt is refused.
    let err = c.cmd("update", &["--l3-cache-schema", "L3:0=f"], &[]);
    let msg = err.assert_failure();
    if rt.is_keel() {
        assert!(msg.contains("no linux.intelRdt"), "{msg}");
    }
}
