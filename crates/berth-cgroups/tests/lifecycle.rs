//! Privileged: real cgroups on this host (v1/hybrid here, pure v2 in the
//! VM of tests/vm-v2.sh). Every test cleans up through `Guard`, even when an
//! assertion fails.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use berth_cgroups::{Layout, Manager, Mode};
use berth_testkit::BUSYBOX;
use oci_spec::runtime::LinuxResources;

/// Kills the children it holds (by pid), then thaws and deletes the cgroup.
struct Guard {
    mgr: Manager,
    children: Vec<Child>,
}

impl Guard {
    fn new(mgr: Manager) -> Guard {
        Guard {
            mgr,
            children: Vec::new(),
        }
    }

    /// As root only: a manager for `/berth-test-<id>/ctr`, guarded, and
    /// its cgroup created.
    fn created() -> Option<(String, Guard)> {
        if !berth_testkit::require_root() {
            return None;
        }
        let id = berth_testkit::unique_id("cg");
        let mgr = Manager::new(Some(&unique_path(&id)), &id).expect("manager");
        let g = Guard::new(mgr);
        g.mgr.create().expect("create");
        Some((id, g))
    }

    /// Wait for the last child pushed; how it ended.
    fn wait_last_child(&mut self) -> ExitStatus {
        let mut child = self.children.pop().expect("child");
        child.wait().expect("wait")
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.mgr.thaw();
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.mgr.delete();
    }
}

fn resources(json: serde_json::Value) -> LinuxResources {
    serde_json::from_value(json).expect("resources json")
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
        .trim()
        .to_owned()
}

fn dir_of(mgr: &Manager, key: &str) -> PathBuf {
    mgr.paths()
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("no {key} dir"))
}

fn proc_state(pid: u32) -> char {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("State:"))
        .and_then(|v| v.trim().chars().next())
        .unwrap_or('?')
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn unique_path(id: &str) -> String {
    format!("/berth-test-{id}/ctr")
}

#[test]
fn limits_freeze_stats_kill_delete() {
    let Some((id, mut g)) = Guard::created() else {
        return;
    };
    let r = resources(serde_json::json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 32},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000}
    }));
    g.mgr.apply(&r).expect("apply");

    match g.mgr.mode() {
        Mode::Legacy => {
            assert_eq!(
                read(&dir_of(&g.mgr, "memory"), "memory.limit_in_bytes"),
                "67108864"
            );
            assert_eq!(read(&dir_of(&g.mgr, "pids"), "pids.max"), "32");
            let cpu = dir_of(&g.mgr, "cpu");
            assert_eq!(read(&cpu, "cpu.shares"), "512");
            assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
            assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
        }
        Mode::Unified => {
            let d = dir_of(&g.mgr, "");
            assert_eq!(read(&d, "memory.max"), "67108864");
            assert_eq!(read(&d, "pids.max"), "32");
            assert_eq!(read(&d, "cpu.weight"), "20");
            assert_eq!(read(&d, "cpu.max"), "50000 100000");
        }
    }

    // a busy child: State R while running, not R while frozen
    let child = Command::new(BUSYBOX)
        .args(["sh", "-c", "while :; do :; done"])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn busy loop");
    let pid = child.id();
    g.children.push(child);
    g.mgr.add_pid(pid as i32).expect("add_pid");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    assert!(cg.contains(&format!("/berth-test-{id}/ctr")), "{cg}");
    assert_eq!(g.mgr.pids().expect("pids"), vec![pid as i32]);

    g.mgr.freeze().expect("freeze");
    assert!(g.mgr.is_frozen().expect("is_frozen"));
    wait_for("frozen task to leave R", || proc_state(pid) != 'R');
    g.mgr.thaw().expect("thaw");
    assert!(!g.mgr.is_frozen().expect("is_frozen"));
    wait_for("thawed task to run", || proc_state(pid) == 'R');

    // the loop has used CPU by now
    std::thread::sleep(Duration::from_millis(100));
    let s = g.mgr.stats().expect("stats");
    assert_eq!(s.pids.current, 1);
    assert_eq!(s.pids.limit, 32);
    assert!(s.cpu.usage.total > 0, "{s:?}");
    assert!(!s.memory.raw.is_empty(), "{s:?}");
    assert_eq!(s.memory.usage.limit, 67108864);
    let json = serde_json::to_value(&s).expect("json");
    assert!(json["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0);
    assert_eq!(g.mgr.oom_kill_count().expect("oom"), 0);

    // a paused container is killed too
    g.mgr.freeze().expect("freeze");
    g.mgr.kill_all(libc::SIGKILL).expect("kill_all");
    let status = g.wait_last_child();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    wait_for("empty cgroup", || {
        g.mgr.pids().map(|p| p.is_empty()).unwrap_or(false)
    });

    let paths = g.mgr.paths();
    g.mgr.delete().expect("delete");
    for (k, p) in &paths {
        assert!(!p.exists(), "{k}: {} still exists", p.display());
        let parent = p.parent().expect("parent");
        assert!(
            !parent.exists(),
            "{k}: parent {} we created still exists",
            parent.display()
        );
    }
    // deleting twice is fine
    g.mgr.delete().expect("second delete");
}

#[test]
fn manager_survives_serialization() {
    if !berth_testkit::require_root() {
        return;
    }
    let id = berth_testkit::unique_id("cg");
    let mgr = Manager::new(Some(&unique_path(&id)), &id).expect("manager");
    let g = Guard::new(mgr);
    // keel saves its state before `create`: that copy must still know
    // which parents to remove
    let json = serde_json::to_string(&g.mgr).expect("serialize");
    g.mgr.create().expect("create");
    let again: Manager = serde_json::from_str(&json).expect("deserialize");
    let r = resources(serde_json::json!({"pids": {"limit": 7}}));
    again
        .update(&r)
        .expect("update through the re-opened manager");
    assert_eq!(again.stats().expect("stats").pids.limit, 7);
    again.delete().expect("delete");
    let top = g
        .mgr
        .paths()
        .into_values()
        .next()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    assert!(
        top.is_some_and(|t| !t.exists()),
        "parent removed by the re-opened manager"
    );
}

#[test]
fn default_path_is_relative_to_own_cgroup() {
    if !berth_testkit::require_root() {
        return;
    }
    let id = berth_testkit::unique_id("cg");
    let mgr = Manager::new(None, &id).expect("manager");
    let g = Guard::new(mgr);
    for (k, p) in g.mgr.paths() {
        assert!(p.ends_with(&id), "{k}: {}", p.display());
    }
    g.mgr.create().expect("create");
    for (k, p) in g.mgr.paths() {
        assert!(p.is_dir(), "{k}: {}", p.display());
    }
}

#[test]
fn errors_name_the_file_and_bad_paths_are_refused() {
    if !berth_testkit::require_root() {
        return;
    }
    let id = berth_testkit::unique_id("cg");
    assert!(Manager::new(Some("/a/../../etc"), &id).is_err());
    let mgr = Manager::new(Some(&unique_path(&id)), &id).expect("manager");
    // never created: the write fails and says where
    let e = mgr
        .update(&resources(serde_json::json!({"pids": {"limit": 5}})))
        .expect_err("write to a missing cgroup");
    assert_eq!(e.to_string(), "cgroup pids.max: write 5");
    if mgr.mode() == Mode::Legacy {
        let e = mgr
            .update(&resources(
                serde_json::json!({"unified": {"memory.high": "1"}}),
            ))
            .expect_err("unified on v1");
        assert!(e.to_string().contains("cgroup v1"), "{e}");
    }
}

/// A child that waits for a line on stdin, then tries to open devices.
fn probe(g: &mut Guard) -> String {
    let script = "read x
if true > /dev/null; then echo null=ok; else echo null=denied; fi
if true < /dev/kmsg; then echo kmsgr=ok; else echo kmsgr=denied; fi
if true > /dev/kmsg; then echo kmsgw=ok; else echo kmsgw=denied; fi";
    let mut child = Command::new(BUSYBOX)
        .args(["sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn probe");
    let add = g.mgr.add_pid(child.id() as i32);
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    g.children.push(child);
    add.expect("add probe");
    stdin.write_all(b"go\n").expect("release probe");
    drop(stdin);
    let mut out = String::new();
    stdout.read_to_string(&mut out).expect("probe output");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn device_rules() {
    let Some((_, mut g)) = Guard::created() else {
        return;
    };

    // deny all (+ runc's defaults, which allow /dev/null)
    g.mgr
        .apply(&resources(
            serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]}),
        ))
        .expect("apply devices");
    assert_eq!(probe(&mut g), "null=ok kmsgr=denied kmsgw=denied");

    // allow reading /dev/kmsg (1:11) only
    let rules = serde_json::json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}
    ]});
    g.mgr.update(&resources(rules)).expect("update devices");
    assert_eq!(probe(&mut g), "null=ok kmsgr=ok kmsgw=denied");

    match g.mgr.layout() {
        Layout::Unified => {
            let d = dir_of(&g.mgr, "");
            assert_eq!(
                berth_cgroups::attached_device_filters(&d).expect("query"),
                1,
                "old filter replaced"
            );
        }
        Layout::Hybrid => {
            // v1 allows /dev/null; an eBPF filter on the unified dir that
            // allows only 1:11 must still refuse it
            let d = dir_of(&g.mgr, "");
            let only_kmsg = berth_cgroups::DeviceRule {
                allow: true,
                kind: berth_cgroups::DeviceKind::Char,
                major: Some(1),
                minor: Some(11),
                access: berth_cgroups::ACC_ALL,
            };
            berth_cgroups::attach_device_filter(&d, &[only_kmsg]).expect("attach");
            berth_cgroups::attach_device_filter(&d, &[only_kmsg]).expect("attach again");
            assert_eq!(
                berth_cgroups::attached_device_filters(&d).expect("query"),
                1,
                "old filter replaced"
            );
            assert_eq!(probe(&mut g), "null=denied kmsgr=ok kmsgw=denied");
        }
        Layout::Legacy => {}
    }
}

/// The first real disk's `major:minor` (blkio throttling needs a whole disk).
fn a_disk() -> Option<String> {
    let rd = std::fs::read_dir("/sys/block").ok()?;
    rd.flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            !["loop", "ram", "zram", "dm-", "md", "nbd"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .find_map(|e| std::fs::read_to_string(e.path().join("dev")).ok())
        .map(|d| d.trim().to_owned())
}

#[test]
fn memory_swap_cpuset_pids_blkio_unified() {
    let Some((_, g)) = Guard::created() else {
        return;
    };
    let mi = |n: i64| n * 1024 * 1024;
    let mut r = serde_json::json!({
        "memory": {"limit": mi(64), "reservation": mi(32), "swap": mi(128)},
        "cpu": {"cpus": "0", "mems": "0"},
        "pids": {"limit": -1}
    });
    let disk = a_disk();
    if let Some(d) = &disk {
        let (maj, min) = d.split_once(':').expect("maj:min");
        let (maj, min): (i64, i64) = (maj.parse().expect("major"), min.parse().expect("minor"));
        r["blockIO"] = serde_json::json!({"throttleReadBpsDevice": [{"major": maj, "minor": min, "rate": 1048576}]});
    }
    if g.mgr.mode() == Mode::Unified {
        r["unified"] = serde_json::json!({"memory.high": mi(48).to_string()});
    }
    g.mgr.apply(&resources(r)).expect("apply");

    match g.mgr.mode() {
        Mode::Legacy => {
            let mem = dir_of(&g.mgr, "memory");
            assert_eq!(read(&mem, "memory.soft_limit_in_bytes"), mi(32).to_string());
            assert_eq!(
                read(&mem, "memory.memsw.limit_in_bytes"),
                mi(128).to_string()
            );
            assert_eq!(read(&dir_of(&g.mgr, "cpuset"), "cpuset.cpus"), "0");
            assert_eq!(read(&dir_of(&g.mgr, "pids"), "pids.max"), "max");
            if let Some(d) = &disk {
                let t = read(&dir_of(&g.mgr, "blkio"), "blkio.throttle.read_bps_device");
                assert_eq!(t, format!("{d} 1048576"));
            }
            // raising both needs memsw first, lowering both needs limit first
            let up = serde_json::json!({"memory": {"limit": mi(256), "swap": mi(512)}});
            g.mgr.update(&resources(up)).expect("raise memory+swap");
            assert_eq!(
                read(&mem, "memory.memsw.limit_in_bytes"),
                mi(512).to_string()
            );
            let down = serde_json::json!({"memory": {"limit": mi(16), "swap": mi(32)}});
            g.mgr.update(&resources(down)).expect("lower memory+swap");
            assert_eq!(read(&mem, "memory.limit_in_bytes"), mi(16).to_string());
        }
        Mode::Unified => {
            let d = dir_of(&g.mgr, "");
            assert_eq!(read(&d, "memory.low"), mi(32).to_string());
            assert_eq!(
                read(&d, "memory.swap.max"),
                mi(64).to_string(),
                "swap is memory+swap - memory"
            );
            assert_eq!(read(&d, "memory.high"), mi(48).to_string());
            assert_eq!(read(&d, "cpuset.cpus"), "0");
            assert_eq!(read(&d, "pids.max"), "max");
            if let Some(dev) = &disk {
                assert!(read(&d, "io.max").contains(&format!("{dev} rbps=1048576")));
            }
            let bad = serde_json::json!({"unified": {"../memory.high": "1"}});
            assert!(g.mgr.update(&resources(bad)).is_err());
        }
    }
}

/// Spawn `script` after a gate line on stdin, so it runs inside the cgroup.
fn spawn_in(g: &mut Guard, script: &str) -> u32 {
    let mut child = Command::new(BUSYBOX)
        .args(["sh", "-c", &format!("read x; {script}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin");
    g.children.push(child);
    g.mgr.add_pid(pid as i32).expect("add_pid");
    stdin.write_all(b"go\n").expect("release");
    pid
}

#[test]
fn oom_kills_are_counted() {
    let Some((_, mut g)) = Guard::created() else {
        return;
    };
    let limit = 16 * 1024 * 1024;
    let r = serde_json::json!({"memory": {"limit": limit, "swap": limit}});
    g.mgr.apply(&resources(r)).expect("apply");
    // dd's 64 MiB buffer cannot fit in 16 MiB without swap
    spawn_in(&mut g, "exec dd if=/dev/zero of=/dev/null bs=64M count=1");
    let status = g.wait_last_child();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    wait_for("oom_kill to be counted", || {
        g.mgr.oom_kill_count().unwrap_or(0) >= 1
    });
}

#[test]
fn kill_all_delivers_other_signals() {
    let Some((_, mut g)) = Guard::created() else {
        return;
    };
    // a parent and a child process in the cgroup
    spawn_in(&mut g, "sleep 1000 & exec sleep 1000");
    wait_for("two pids", || {
        g.mgr.pids().map(|p| p.len() == 2).unwrap_or(false)
    });
    g.mgr.kill_all(libc::SIGTERM).expect("kill_all TERM");
    let status = g.wait_last_child();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    wait_for("empty cgroup", || {
        g.mgr.pids().map(|p| p.is_empty()).unwrap_or(false)
    });
    assert!(
        !g.mgr.is_frozen().expect("is_frozen"),
        "thawed after signalling"
    );
    // nothing left to signal: not an error
    g.mgr
        .kill_all(libc::SIGKILL)
        .expect("kill_all on an empty cgroup");
}

#[test]
fn systemd_form_maps_onto_cgroupfs() {
    if !berth_testkit::require_root() {
        return;
    }
    let id = berth_testkit::unique_id("cg");
    let slice = format!("berthtest-{}.slice", id.replace('-', "_"));
    let opts = berth_cgroups::Options { systemd: true };
    let path = format!("{slice}:pre:{id}");
    let mgr = Manager::with_options(Some(&path), &id, opts).expect("manager");
    let g = Guard::new(mgr);
    let want = format!("berthtest.slice/{slice}/pre-{id}.scope");
    for (k, p) in g.mgr.paths() {
        assert!(p.ends_with(&want), "{k}: {}", p.display());
    }
    g.mgr.create().expect("create");
    g.mgr.delete().expect("delete");
    for (k, p) in g.mgr.paths() {
        let top = p.parent().and_then(Path::parent).expect("berthtest.slice");
        assert!(!top.exists(), "{k}: {} left behind", top.display());
    }
}
