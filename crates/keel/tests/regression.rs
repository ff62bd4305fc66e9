//! Regression tests named after the runc CVE classes they guard against.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::process::CommandExt;
use std::time::Duration;

use common::{bundle_with, busybox, Runtime};

/// Run `RUNTIME run` with a host directory leaked (without CLOEXEC) as fd 5.
fn run_with_leaked_dir_fd(
    rt: &Runtime,
    b: &berth_testkit::Bundle,
    extra: &[&str],
) -> common::Outcome {
    let c = rt.container("leak");
    let host_dir = std::fs::File::open("/").unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&host_dir);
    let mut cmd = rt.command();
    cmd.arg("run")
        .args(extra)
        .arg("--bundle")
        .arg(b.path())
        .arg(&c.id);
    // SAFETY: dup2 in the forked child before exec; async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself keeps FD_CLOEXEC: clear it explicitly.
            if libc::dup2(raw, 5) < 0 || libc::fcntl(5, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = common::capture(&mut cmd);
    drop(host_dir);
    out
}

#[test]
fn cve_2024_21626_cwd_cannot_be_a_leaked_host_fd() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    for fd in 3..=8 {
        let probe =
            "test -e ../../../../../../../../etc/debian_version && echo HOSTLEAK; pwd; true";
        let b = bundle_with(&["sh", "-c", probe], |c| {
            c["process"]["cwd"] = serde_json::json!(format!("/proc/self/fd/{fd}"));
        });
        let out = run_with_leaked_dir_fd(&rt, &b, &[]);
        assert!(
            !out.stdout.contains("HOSTLEAK"),
            "fd {fd}: cwd escaped to the host: {out:#?}"
        );
    }
}

#[test]
fn cve_2024_21626_no_host_fd_leaks_into_the_container() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&["ls", "/proc/self/fd"]);
    let out = run_with_leaked_dir_fd(&rt, &b, &[]);
    out.assert_success();
    let fds: Vec<u32> = out
        .stdout
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    // 0-2 and the directory ls itself opened.
    assert!(fds.iter().all(|&f| f <= 3), "leaked fds: {fds:?}");
    assert!(!fds.contains(&5));
}

#[test]
fn preserve_fds_passes_exactly_the_asked_fds() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let b = busybox(&[
        "sh",
        "-c",
        "test -e /proc/self/fd/5 && echo has5; ls /proc/self/fd",
    ]);
    let out = run_with_leaked_dir_fd(&rt, &b, &["--preserve-fds", "3"]);
    out.assert_success();
    assert!(out.stdout.contains("has5"), "{out:#?}");
}

#[test]
fn cve_2019_5736_runtime_binary_not_writable_from_the_container() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let a = rt.container("victim");
    let ba = busybox(&["sleep", "100"]);
    a.create(&ba, &[]).assert_success();
    a.start().assert_success();
    // B's init (the runtime's own image until `start`) lives in A's pid ns.
    let pidns = format!("/proc/{}/ns/pid", a.pid());
    let bb = bundle_with(&["true"], |c| {
        c["linux"]["namespaces"][0] = serde_json::json!({"type": "pid", "path": pidns});
    });
    let b = rt.container("intruder");
    b.create(&bb, &[]).assert_success();
    std::thread::sleep(Duration::from_millis(100));
    let script = "for p in /proc/[0-9]*; do \
        [ $p = /proc/$$ ] && continue; [ $p/exe -ef /bin/busybox ] && continue; \
        echo SEEN $p; (exec 3>>$p/exe) 2>/dev/null && echo WRITABLE $p; \
        (exec 3<$p/exe) 2>/dev/null && echo READABLE $p; done; true";
    let out = a.exec(&["sh", "-c", script]);
    out.assert_success();
    assert!(
        out.stdout.contains("SEEN"),
        "the runtime's init was not visible: {out:#?}"
    );
    assert!(
        !out.stdout.contains("WRITABLE"),
        "runtime binary writable: {out:#?}"
    );
    if rt.is_keel() {
        assert!(
            !out.stdout.contains("READABLE"),
            "keel's image readable: {out:#?}"
        );
    }
}
