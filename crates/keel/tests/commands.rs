//! The secondary verbs: update, events, features, spec, ps.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;

use common::{busybox, capture, Runtime};

#[test]
fn update_changes_the_pids_limit_seen_inside() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&["sleep", "100"]);
    let c = rt.container("upd");
    c.create(&b, &[]).assert_success();
    c.start().assert_success();
    let limit = || {
        let out = c.exec(&[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
        ]);
        out.stdout.trim().to_owned()
    };
    c.cmd("update", &["--pids-limit", "10"], &[])
        .assert_success();
    assert_eq!(limit(), "10");
    // containerd's spelling: `update --resources -` with the JSON on stdin.
    let json = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(json.path(), r#"{"pids": {"limit": 20}}"#).unwrap();
    let mut cmd = rt.command();
    cmd.args(["update", "--resources", "-", &c.id])
        .stdin(Stdio::from(std::fs::File::open(json.path()).unwrap()));
    capture(&mut cmd).assert_success();
    assert_eq!(limit(), "20");
}

#[test]
fn events_stats_prints_one_json_line() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&["sleep", "100"]);
    let c = rt.container("ev");
    c.create(&b, &[]).assert_success();
    c.start().assert_success();
    let out = c.cmd("events", &["--stats"], &[]);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], c.id.as_str());
    assert!(v["data"].is_object());
}

#[test]
fn features_and_spec() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let out = rt.exec(&["features"]);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(v["ociVersionMax"].as_str().unwrap().starts_with("1."));
    assert!(v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "user"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    rt.exec(&["spec", "--bundle", d]).assert_success();
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["root"]["path"], "rootfs");
    rt.exec(&["spec", "--bundle", d]).assert_failure();
}

#[test]
fn ps_table_lists_the_container_processes() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&["sleep", "100"]);
    let c = rt.container("ps");
    c.create(&b, &[]).assert_success();
    c.start().assert_success();
    let out = c.cmd("ps", &[], &[]);
    out.assert_success();
    let mut lines = out.stdout.lines();
    assert!(lines.next().unwrap().contains("PID"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{out:#?}");
    assert!(rows[0].contains("sleep 100"));
}

#[test]
fn command_line_forms_and_usage_errors() {
    // No container is created: this runs without root too.
    let rt = Runtime::new();
    // runc's forms: single-dash long names, `=`.
    let out = rt.exec(&["--debug", "list", "-format=json"]);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(v.is_array() || v.is_null(), "{}", out.stdout);
    let out = rt.exec(&["--version"]);
    out.assert_success();
    assert!(out.stdout.contains("spec: 1."), "{}", out.stdout);
    if !rt.is_keel() {
        return; // the wording and exit status below are keel's own
    }
    // keel also takes global options after the verb (as clap did).
    rt.exec(&["list", "-q", "--debug"]).assert_success();
    let out = rt.exec(&["exec", "--help"]);
    out.assert_success();
    assert!(out.stdout.contains("--tty") && out.stdout.contains("<container-id>"));
    for (args, says) in [
        (&["frobnicate"][..], "unknown command \"frobnicate\""),
        (&["delete", "--bogus", "x"][..], "unknown option --bogus"),
        (&["create"][..], "create needs <container-id>"),
        (
            &["list", "--format", "yaml"][..],
            "invalid value \"yaml\" for --format",
        ),
        (
            &["exec", "--preserve-fds", "many", "x", "true"][..],
            "invalid value \"many\" for --preserve-fds",
        ),
        (&["--root"][..], "--root needs a value"),
    ] {
        let out = rt.exec(args);
        assert_eq!(out.code, 2, "{args:?}: {out:#?}");
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
    }
}
