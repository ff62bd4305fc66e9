//! The "Bad input" list: each case is a one-line error, a non-zero
//! exit, and nothing left behind (state dir, cgroup, process).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{assert_nothing_left, bundle_with, busybox, Runtime};

/// Where a failed command must leave no cgroup directory named after the id.
const CGROUP_ROOTS: &[&str] = &[
    "/sys/fs/cgroup/pids",
    "/sys/fs/cgroup/memory",
    "/sys/fs/cgroup/cpu,cpuacct",
    "/sys/fs/cgroup/freezer",
    "/sys/fs/cgroup",
];

#[track_caller]
fn one_line(err: &str) -> &str {
    let t = err.trim();
    assert!(!t.is_empty(), "empty error");
    t
}

#[test]
fn missing_bundle() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let id = berth_testkit::unique_id("nobundle");
    let out = rt.exec(&["create", "--bundle", "/nonexistent/bundle", &id]);
    one_line(out.assert_failure());
    assert_nothing_left(&rt, &id, CGROUP_ROOTS);
}

#[test]
fn malformed_config_names_the_field() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = bundle_with(&["true"], |c| {
        c["process"]["user"]["uid"] = serde_json::json!("root")
    });
    let c = rt.container("badjson");
    let err = c.create(&b, &[]).assert_failure().to_owned();
    let line = one_line(&err);
    if rt.is_keel() {
        assert!(line.contains("process.user.uid"), "{line}");
        assert_eq!(line.lines().count(), 1, "{line}");
    }
    assert_nothing_left(&rt, &c.id, CGROUP_ROOTS);
    std::fs::write(b.path().join("config.json"), "{\"ociVersion\": ").unwrap();
    c.create(&b, &[]).assert_failure();
    assert_nothing_left(&rt, &c.id, CGROUP_ROOTS);
}

#[test]
fn unsupported_oci_version() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = bundle_with(&["true"], |c| c["ociVersion"] = serde_json::json!("2.0.0"));
    let c = rt.container("ociver");
    let out = c.create(&b, &[]);
    if rt.is_keel() {
        assert!(out.assert_failure().contains("ociVersion"), "{out:#?}");
    }
    // runc only warns about versions; either way nothing may be left on failure.
    if out.code != 0 {
        assert_nothing_left(&rt, &c.id, CGROUP_ROOTS);
    }
}

#[test]
fn unknown_namespace_type() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = bundle_with(&["true"], |c| {
        c["linux"]["namespaces"][0]["type"] = serde_json::json!("bogus")
    });
    let c = rt.container("nstype");
    let err = c.create(&b, &[]).assert_failure().to_owned();
    assert!(one_line(&err).contains("bogus"), "{err}");
    assert_nothing_left(&rt, &c.id, CGROUP_ROOTS);
}

#[test]
fn nonexistent_joined_namespace_path() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = bundle_with(&["true"], |c| {
        c["linux"]["namespaces"][1] =
            serde_json::json!({"type": "network", "path": "/nonexistent/ns/net"});
    });
    let c = rt.container("nspath");
    let err = c.create(&b, &[]).assert_failure().to_owned();
    assert!(one_line(&err).contains("/nonexistent/ns/net"), "{err}");
    assert_nothing_left(&rt, &c.id, CGROUP_ROOTS);
}

#[test]
fn empty_args() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&[]);
    let c = rt.container("noargs");
    let err = c.create(&b, &[]).assert_failure().to_owned();
    if rt.is_keel() {
        assert!(one_line(&err).contains("process.args"), "{err}");
    }
    assert_nothing_left(&rt, &c.id, CGROUP_ROOTS);
}

#[test]
fn missing_executable() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let c = rt.container("noexe");
    let err = c
        .create(&busybox(&["/no/such/program"]), &[])
        .assert_failure()
        .to_owned();
    one_line(&err);
    assert_nothing_left(&rt, &c.id, CGROUP_ROOTS);
}

#[test]
fn invalid_ids() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&["true"]);
    for id in ["../escape", "a/b", ".."] {
        let out = rt.exec(&["create", "--bundle", b.path().to_str().unwrap(), id]);
        out.assert_failure();
    }
    assert!(rt.list_ids().is_empty());
    assert!(!rt.root().parent().unwrap().join("escape").exists());
}

#[test]
fn duplicate_id_is_refused() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&["sleep", "100"]);
    let c = rt.container("dup");
    c.create(&b, &[]).assert_success();
    let pid = c.pid();
    c.create(&b, &[]).assert_failure();
    assert_eq!(c.status(), "created");
    assert_eq!(c.pid(), pid);
}

#[test]
fn invalid_signal() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let c = rt.container("badsig");
    let b = busybox(&["sleep", "100"]);
    c.create(&b, &[]).assert_success();
    c.start().assert_success();
    for sig in ["SIGNOPE", "999", "-3"] {
        c.cmd("kill", &[], &[sig]).assert_failure();
    }
    assert_eq!(c.status(), "running");
}

#[test]
fn operations_in_the_wrong_state() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let c = rt.container("wrong");
    c.start().assert_failure();
    c.cmd("state", &[], &[]).assert_failure();
    c.cmd("kill", &[], &["KILL"]).assert_failure();
    c.cmd("delete", &[], &[]).assert_failure();
    let b = busybox(&["sleep", "100"]);
    c.create(&b, &[]).assert_success();
    c.cmd("resume", &[], &[]).assert_failure();
    c.start().assert_success();
    c.start().assert_failure();
    assert_eq!(c.status(), "running");
}

#[test]
fn killed_create_is_cleanable_with_delete_force() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    // createRuntime blocks, so `create` is killed in the middle of setup.
    let b = bundle_with(&["true"], |c| {
        c["hooks"] =
            serde_json::json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"]}]});
    });
    let c = rt.container("crash");
    let mut child = rt
        .command()
        .args(["create", "--bundle"])
        .arg(b.path())
        .arg(&c.id)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    child.kill().unwrap();
    child.wait().unwrap();
    c.force_delete().assert_success();
    std::thread::sleep(Duration::from_millis(200));
    assert_nothing_left(&rt, &c.id, CGROUP_ROOTS);
}

#[test]
fn damaged_state_is_removed_by_delete_force() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    if !rt.is_keel() {
        return; // keel's own state layout
    }
    let id = berth_testkit::unique_id("damaged");
    std::fs::create_dir_all(rt.root().join(&id)).unwrap();
    std::fs::write(rt.root().join(&id).join("state.json"), "").unwrap();
    let err = rt.exec(&["delete", &id]).assert_failure().to_owned();
    assert!(one_line(&err).contains("state"), "{err}");
    rt.exec(&["delete", "--force", &id]).assert_success();
    assert!(!rt.root().join(&id).exists());
}
