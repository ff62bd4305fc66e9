//! runtime-spec 1.2 Linux fields keel used to ignore: `linux.memoryPolicy`,
//! `linux.netDevices`, `linux.intelRdt`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{assert_nothing_left, bundle_with, Runtime};

/// Where a failed create must leave no cgroup directory named after the id.
const CGROUP_ROOTS: &[&str] = &[
    "/sys/fs/cgroup/pids",
    "/sys/fs/cgroup/memory",
    "/sys/fs/cgroup/freezer",
    "/sys/fs/cgroup",
];

/// The error is one non-empty line.
#[track_caller]
fn one_line(err: &str) -> String {
    let t = err.trim();
    assert!(!t.is_empty(), "empty error");
    assert_eq!(t.lines().count(), 1, "not one line: {t}");
    t.to_owned()
}

#[test]
fn memory_policy_bind_is_applied() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = bundle_with(&["cat", "/proc/self/numa_maps"], |c| {
        c["linux"]["memoryPolicy"] = serde_json::json!({"mode": "MPOL_BIND", "nodes": "0"});
    });
    let out = rt.run_bundle(&b);
    out.assert_success();
    assert!(out.stdout.contains("bind:0"), "{}", out.stdout);
}

#[test]
fn memory_policy_bad_nodes_and_mode() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    for (policy, field) in [
        (
            serde_json::json!({"mode": "MPOL_BIND", "nodes": "0-x"}),
            "linux.memoryPolicy.nodes",
        ),
        (
            serde_json::json!({"mode": "MPOL_BOGUS", "nodes": "0"}),
            "linux.memoryPolicy.mode",
        ),
        (
            serde_json::json!({"mode": "MPOL_INTERLEAVE"}),
            "linux.memoryPolicy",
        ),
    ] {
        let b = bundle_with(&["true"], |c| c["linux"]["memoryPolicy"] = policy.clone());
        let c = rt.container("mpol");
        let line = one_line(c.create(&b, &[]).assert_failure());
        if rt.is_keel() {
            assert!(line.contains(field), "{line}");
        }
        assert_nothing_left(&rt, &c.id, CGROUP_ROOTS);
    }
}

/// A veth pair on the host, deleted on drop if still there.
struct Veth {
    host: String,
    peer: String,
}

impl Veth {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let base = format!("kg{}x{n}", std::process::id() % 100_000);
        let v = Self {
            host: format!("{base}a"),
            peer: format!("{base}b"),
        };
        let ok = Command::new("ip")
            .args([
                "link", "add", &v.host, "type", "veth", "peer", "name", &v.peer,
            ])
            .status()
            .unwrap();
        assert!(ok.success(), "ip link add {} failed", v.host);
        v
    }
}

fn host_has_link(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

impl Drop for Veth {
    fn drop(&mut self) {
        for n in [&self.host, &self.peer] {
            if host_has_link(n) {
                let _ = Command::new("ip").args(["link", "del", n]).status();
            }
        }
    }
}

#[test]
fn net_device_moves_into_the_container() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let veth = Veth::new();
    let b = bundle_with(&["sleep", "60"], |c| {
        c["linux"]["netDevices"] = serde_json::json!({ veth.host.as_str(): {"name": "eth7"} });
    });
    let c = rt.container("netdev");
    c.create(&b, &[]).assert_success();
    c.start().assert_success();
    assert!(c.wait_status("running", Duration::from_secs(5)));
    assert!(
        !host_has_link(&veth.host),
        "{} is still on the host",
        veth.host
    );
    let out = c.exec(&["ip", "link", "show", "eth7"]);
    out.assert_success();
    assert!(out.stdout.contains("eth7"), "{}", out.stdout);
    c.force_delete().assert_success();
}

#[test]
fn net_device_missing_or_without_netns_fails_cleanly() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let missing = format!("kgnone{}", std::process::id() % 100_000);
    let b = bundle_with(&["true"], |c| {
        c["linux"]["netDevices"] = serde_json::json!({ missing.as_str(): {"name": "eth7"} });
    });
    let c = rt.container("netdev-missing");
    let line = one_line(c.create(&b, &[]).assert_failure());
    if rt.is_keel() {
        assert!(
            line.contains("linux.netDevices") && line.contains("not found"),
            "{line}"
        );
    }
    assert_nothing_left(&rt, &c.id, CGROUP_ROOTS);

    let b = bundle_with(&["true"], |c| {
        c["linux"]["netDevices"] = serde_json::json!({ "lo": {"name": "eth7"} });
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
    });
    let c = rt.container("netdev-nons");
    let line = one_line(c.create(&b, &[]).assert_failure());
    if rt.is_keel() {
        assert!(
            line.contains("linux.netDevices") && line.contains("network namespace"),
            "{line}"
        );
    }
    assert_nothing_left(&rt, &c.id, CGROUP_ROOTS);
    assert!(host_has_link("lo"));
}

fn resctrl_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(" /sys/fs/resctrl ") && l.contains(" - resctrl "))
}

#[test]
fn intel_rdt_without_resctrl_fails_cleanly() {
    if !berth_testkit::require_root() || resctrl_mounted() {
        return;
    }
    let rt = Runtime::new();
    let b = bundle_with(&["true"], |c| {
        c["linux"]["intelRdt"] =
            serde_json::json!({"closID": "keeltest", "l3CacheSchema": "L3:0=f"});
    });
    let c = rt.container("rdt");
    let line = one_line(c.create(&b, &[]).assert_failure());
    if rt.is_keel() {
        assert!(
            line.contains("linux.intelRdt is set but no resctrl filesystem is mounted"),
            "{line}"
        );
    }
    assert_nothing_left(&rt, &c.id, CGROUP_ROOTS);
}

#[test]
fn features_report_the_new_fields() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    if !rt.is_keel() {
        return;
    }
    let out = rt.exec(&["features"]);
    out.assert_success();
    let f: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(f["linux"]["netDevices"]["enabled"], true);
    assert_eq!(f["linux"]["intelRdt"]["enabled"], true);
    let modes = f["linux"]["memoryPolicy"]["modes"].as_array().unwrap();
    assert!(modes.iter().any(|m| m == "MPOL_BIND"));
    let flags = f["linux"]["memoryPolicy"]["flags"].as_array().unwrap();
    assert!(flags.iter().any(|m| m == "MPOL_F_STATIC_NODES"));
}
