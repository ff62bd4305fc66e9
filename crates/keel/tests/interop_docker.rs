//! Docker (Debian's dockerd 20.10, private instance) runs containers with
//! `--runtime keel`: -it, -d, exec, stop, --memory, --pids-limit, --cap-drop,
//! --read-only.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use berth_testkit::peers::{busybox_docker_archive, check, run, Dockerd};

const IMAGE: &str = "keelbox:latest";

fn setup() -> Option<Dockerd> {
    if !berth_testkit::require_root() {
        return None;
    }
    let keel = Path::new(env!("CARGO_BIN_EXE_keel"));
    let d = match Dockerd::start(&[("keel", keel)]) {
        Ok(d) => d,
        Err(e) => panic!("dockerd: {e}"),
    };
    let archive = match busybox_docker_archive(d.dir(), IMAGE) {
        Ok(a) => a,
        Err(e) => panic!("image: {e}"),
    };
    check(d.docker().arg("load").arg("-i").arg(&archive));
    Some(d)
}

fn docker_run(d: &Dockerd, flags: &[&str], cmd: &[&str]) -> String {
    let mut c = d.docker();
    c.args(["run", "--rm", "--runtime", "keel", "--network", "none"])
        .args(flags)
        .arg(IMAGE)
        .args(cmd);
    check(&mut c)
}

fn cap_eff(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(u64::MAX)
}

#[test]
fn docker_run_with_keel_runtime() {
    let Some(d) = setup() else { return };

    let out = docker_run(&d, &[], &["sh", "-c", "echo hi-from-keel; id -u"]);
    assert_eq!(out.trim(), "hi-from-keel\n0".trim(), "{}", d.log());

    // exit codes come back
    let st = d
        .docker()
        .args([
            "run",
            "--rm",
            "--runtime",
            "keel",
            "--network",
            "none",
            IMAGE,
        ])
        .args(["sh", "-c", "exit 3"])
        .status()
        .map(|s| s.code());
    assert_eq!(st.ok().flatten(), Some(3));

    // --cap-drop: NET_RAW (bit 13) gone, CHOWN (bit 0) kept
    let st = docker_run(
        &d,
        &["--cap-drop", "NET_RAW"],
        &["cat", "/proc/self/status"],
    );
    let eff = cap_eff(&st);
    assert_eq!(eff & (1 << 13), 0, "NET_RAW dropped: {st}");
    assert_ne!(eff & 1, 0, "CHOWN kept: {st}");
    let st = docker_run(&d, &["--cap-drop", "ALL"], &["cat", "/proc/self/status"]);
    assert_eq!(cap_eff(&st), 0, "{st}");

    // --read-only root
    let out = docker_run(
        &d,
        &["--read-only"],
        &["sh", "-c", "touch /x 2>&1 && echo wrote || echo refused"],
    );
    assert!(out.contains("refused"), "{out}");
}

#[test]
fn docker_detached_exec_stop_and_limits() {
    let Some(d) = setup() else { return };
    let name = berth_testkit::unique_id("dk");
    let id = check(d.docker().args([
        "run",
        "-d",
        "--runtime",
        "keel",
        "--network",
        "none",
        "--name",
        &name,
        "--memory",
        "64m",
        "--pids-limit",
        "20",
        IMAGE,
        "sleep",
        "1000",
    ]));
    let id = id.trim().to_owned();

    let out = check(d.docker().args([
        "exec",
        &name,
        "sh",
        "-c",
        "echo exec-ok; cat /proc/1/cmdline",
    ]));
    assert!(out.starts_with("exec-ok"), "{out}");
    assert!(out.contains("sleep"), "{out}");

    // limits as the kernel sees them, from the host's cgroup files (v1 here; v2 elsewhere)
    let parent = d.cgroup_parent();
    let mem = read_cgroup(
        &format!("{parent}/{id}"),
        &["memory/{}/memory.limit_in_bytes", "{}/memory.max"],
    );
    assert_eq!(mem.trim(), "67108864");
    let pids = read_cgroup(
        &format!("{parent}/{id}"),
        &["pids/{}/pids.max", "{}/pids.max"],
    );
    assert_eq!(pids.trim(), "20");

    // docker update goes through `keel update --resources -`
    check(d.docker().args(["update", "--pids-limit", "30", &name]));
    let pids = read_cgroup(
        &format!("{parent}/{id}"),
        &["pids/{}/pids.max", "{}/pids.max"],
    );
    assert_eq!(pids.trim(), "30", "pids.max after docker update");

    // pause / unpause go through keel's freezer
    check(d.docker().args(["pause", &name]));
    let state = check(
        d.docker()
            .args(["inspect", "-f", "{{.State.Status}}", &name]),
    );
    assert_eq!(state.trim(), "paused");
    check(d.docker().args(["unpause", &name]));

    // inspect says running, stop (sleep ignores SIGTERM as pid 1 → SIGKILL after -t)
    let state = check(
        d.docker()
            .args(["inspect", "-f", "{{.State.Running}}", &name]),
    );
    assert_eq!(state.trim(), "true");
    check(d.docker().args(["stop", "-t", "1", &name]));
    let state = check(d.docker().args([
        "inspect",
        "-f",
        "{{.State.Running}} {{.State.ExitCode}}",
        &name,
    ]));
    assert_eq!(state.trim(), "false 137");
    check(d.docker().args(["rm", &name]));
}

fn read_cgroup(cgroup: &str, candidates: &[&str]) -> String {
    for c in candidates {
        let p = format!("/sys/fs/cgroup/{}", c.replace("{}", cgroup));
        if let Ok(s) = std::fs::read_to_string(&p) {
            return s;
        }
    }
    panic!("no cgroup file for {cgroup} among {candidates:?}");
}

#[test]
fn docker_run_interactive_tty_with_keel() {
    let Some(d) = setup() else { return };
    // `script` gives docker a real terminal, so -it goes through keel's console socket
    let docker = d.docker();
    let mut line = docker.get_program().to_string_lossy().into_owned();
    for a in docker.get_args() {
        line.push(' ');
        line.push_str(&a.to_string_lossy());
    }
    let inner = format!(
        "{line} run --rm -it --runtime keel --network none {IMAGE} sh -c 'tty; echo size=$(stty size)'"
    );
    let out = run(Command::new("script").args(["-qec", &inner, "/dev/null"]))
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(
        out.contains("/dev/pts/0"),
        "tty inside: {out:?}\n{}",
        d.log()
    );
    assert!(out.contains("size="), "{out:?}");
}
