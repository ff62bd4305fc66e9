//! containerd (Debian's 1.6, private instance) runs containers with keel as
//! its runc binary: run, exec, kill, delete.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use berth_testkit::peers::{busybox_docker_archive, check, Containerd};

const IMAGE: &str = "docker.io/library/keelbox:latest";

/// keel, or the runtime named by `KEEL_TEST_RUNTIME` (e.g. `runc`), so a
/// failure can be checked against runc with the same test.
fn keel() -> PathBuf {
    std::env::var_os("KEEL_TEST_RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_keel")))
}

fn setup() -> Option<Containerd> {
    if !berth_testkit::require_root() {
        return None;
    }
    let ctrd = match Containerd::start() {
        Ok(c) => c,
        Err(e) => panic!("containerd: {e}"),
    };
    let archive = match busybox_docker_archive(ctrd.dir(), IMAGE) {
        Ok(a) => a,
        Err(e) => panic!("image: {e}"),
    };
    check(ctrd.ctr().args(["image", "import"]).arg(&archive));
    Some(ctrd)
}

/// `ctr run` with keel as the runc binary, its state and the IO fifos kept
/// in the instance's temporary root.
fn ctr_run(ctrd: &Containerd) -> std::process::Command {
    let mut c = ctrd.ctr();
    c.arg("run")
        .arg("--runc-binary")
        .arg(keel())
        .arg("--runc-root")
        .arg(ctrd.runc_root())
        .arg("--fifo-dir")
        .arg(ctrd.fifo_dir());
    c
}

#[test]
fn ctr_run_exec_kill_delete_with_keel() {
    let Some(ctrd) = setup() else { return };
    let id = berth_testkit::unique_id("ctr-keel");

    // foreground run with output and exit code
    let out = check(
        ctr_run(&ctrd)
            .args(["--rm", IMAGE, &format!("{id}-fg")])
            .args(["sh", "-c", "echo hello-from-keel; hostname"]),
    );
    assert!(out.contains("hello-from-keel"), "{out}\n{}", ctrd.log());
    let code = ctr_run(&ctrd)
        .args(["--rm", IMAGE, &format!("{id}-exit"), "sh", "-c", "exit 7"])
        .status()
        .map(|s| s.code());
    assert_eq!(code.ok().flatten(), Some(7), "exit status of the task");

    // detached task, exec into it, kill, delete
    check(ctr_run(&ctrd).args(["-d", IMAGE, &id, "sleep", "1000"]));
    let ps = check(ctrd.ctr().args(["task", "ls"]));
    assert!(
        ps.lines()
            .any(|l| l.starts_with(&id) && l.contains("RUNNING")),
        "{ps}"
    );
    // What the exec'd process sees is checked through its exit status: that
    // is keel's job. Its stdout travels through containerd 1.6's fifo copy,
    // which once delivered nothing for a short-lived exec (about 1 run in 25
    // while the machine was loaded with parallel builds). Later, 160 execs
    // (80 quiet, 80 beside three busy loops) lost nothing, with keel or with
    // runc. The output check still retries an empty read with a new exec id.
    // See docs/interop.md.
    let exec_in = |exec_id: &str, script: &str| {
        ctrd.ctr()
            .args(["task", "exec", "--fifo-dir"])
            .arg(ctrd.fifo_dir())
            .args(["--exec-id", exec_id, &id, "sh", "-c", script])
            .output()
            .map(|o| {
                (
                    o.status.code(),
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                )
            })
            .unwrap_or((None, String::new()))
    };
    let (code, _) = exec_in("e0", "grep -q sleep /proc/1/cmdline && exit 42");
    assert_eq!(code, Some(42), "exec joins the container's pid namespace");
    let mut exec = String::new();
    for attempt in 1..=3 {
        let (code, out) = exec_in(&format!("e{attempt}"), "echo exec-ok; cat /proc/1/cmdline");
        assert_eq!(code, Some(0), "exec exit status: {out}");
        exec = out;
        if !exec.is_empty() {
            break;
        }
    }
    assert!(exec.contains("exec-ok"), "{exec}");
    assert!(
        exec.contains("sleep"),
        "exec sees the container's pid 1: {exec}"
    );
    let pids = check(ctrd.ctr().args(["task", "ps", &id]));
    assert!(pids.lines().count() >= 2, "task ps lists the init: {pids}");

    // pause and resume go through keel's freezer
    check(ctrd.ctr().args(["task", "pause", &id]));
    let ls = check(ctrd.ctr().args(["task", "ls"]));
    assert!(
        ls.lines()
            .any(|l| l.starts_with(&id) && l.contains("PAUSED")),
        "{ls}"
    );
    check(ctrd.ctr().args(["task", "resume", &id]));
    let ls = check(ctrd.ctr().args(["task", "ls"]));
    assert!(
        ls.lines()
            .any(|l| l.starts_with(&id) && l.contains("RUNNING")),
        "{ls}"
    );

    check(ctrd.ctr().args(["task", "kill", "-s", "SIGKILL", &id]));
    let mut stopped = false;
    for _ in 0..100 {
        let ls = check(ctrd.ctr().args(["task", "ls"]));
        if ls
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("STOPPED"))
        {
            stopped = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(stopped, "task stopped after SIGKILL");
    check(ctrd.ctr().args(["task", "delete", &id]));
    check(ctrd.ctr().args(["container", "delete", &id]));
    let ls = check(ctrd.ctr().args(["container", "ls", "-q"]));
    assert!(!ls.contains(&id), "{ls}");
}
