//! Namespaces joined by path together with new user and pid namespaces: a
//! new user namespace next to a joined network namespace, and a new pid
//! namespace inside a joined user namespace (keel's staged path, a second
//! fork like runc's nsexec).

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{assert_init_reaped, bundle_with, pid_alive, pure_v2, Runtime};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

/// A network namespace made with `ip netns add`, with loopback up and the
/// extra address 127.7.7.7 on it; deleted on drop.
struct NetNs {
    name: String,
}

impl NetNs {
    fn new() -> Self {
        let ns = NetNs {
            name: berth_testkit::unique_id("kns"),
        };
        ip(&["netns", "add", &ns.name]);
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ip(&["-n", &ns.name, "addr", "add", "127.7.7.7/32", "dev", "lo"]);
        ns
    }

    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?}: {out:?}");
}

/// A process holding a user namespace open (`unshare --user
/// --map-root-user sleep`); killed by pid on drop.
struct UserNsHolder {
    child: Child,
}

impl UserNsHolder {
    fn new() -> Self {
        let child = Command::new("unshare")
            .args(["--user", "--map-root-user", "sleep", "1000"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let holder = UserNsHolder { child };
        let own = ns_ino(Path::new("/proc/self/ns/user"));
        for _ in 0..200 {
            if ns_ino(&holder.path()) != own {
                return holder;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the helper never entered its user namespace");
    }

    fn path(&self) -> std::path::PathBuf {
        format!("/proc/{}/ns/user", self.child.id()).into()
    }
}

impl Drop for UserNsHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ns_ino(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0)
}

/// Keep a user-namespaced container simple: no sysfs or cgroup mounts
/// (their rules depend on who owns the network namespace).
fn drop_sys_mounts(c: &mut Value) {
    let mounts = c["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| m["type"] != "sysfs" && m["type"] != "cgroup");
}

/// The default namespaces with `typ` replaced by (or added as) `ns`.
fn set_ns(c: &mut Value, ns: Value) {
    let list = c["linux"]["namespaces"].as_array_mut().unwrap();
    list.retain(|n| n["type"] != ns["type"]);
    list.push(ns);
}

/// New user (0 → 100000), pid, mount, uts, ipc and cgroup namespaces, the
/// network namespace joined by path.
fn userns_in_netns(args: &[&str], netns: &NetNs) -> berth_testkit::Bundle {
    userns_in_netns_with(args, netns, |_| {})
}

/// [`userns_in_netns`] with more config edits.
fn userns_in_netns_with(
    args: &[&str],
    netns: &NetNs,
    edit: impl FnOnce(&mut Value),
) -> berth_testkit::Bundle {
    bundle_with(args, |c| {
        set_ns(c, json!({"type": "network", "path": netns.path()}));
        set_ns(c, json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        drop_sys_mounts(c);
        edit(c);
    })
}

#[test]
fn new_user_namespace_joins_a_network_namespace_by_path() {
    if !berth_testkit::require_root() {
        return;
    }
    let netns = NetNs::new();
    let script = "stat -L -c %i /proc/self/ns/net; cat /proc/self/uid_map; echo pid=$$; \
                  cat /proc/1/comm; grep -q 127.7.7.7 /proc/net/fib_trie && echo addr-ok; id -u; hostname";
    let b = userns_in_netns(&["sh", "-c", script], &netns);
    let rt = Runtime::new();
    let out = rt.run_bundle(&b);
    out.assert_success();
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    let ino = ns_ino(Path::new(&netns.path())).to_string();
    assert_eq!(
        words,
        [&ino, "0", "100000", "65536", "pid=1", "sh", "addr-ok", "0", "keel"],
        "{out:#?}"
    );
}

#[test]
fn staged_init_is_the_container_process_for_kill_and_delete() {
    if !berth_testkit::require_root() {
        return;
    }
    let netns = NetNs::new();
    let b = userns_in_netns(&["sleep", "1000"], &netns);
    let rt = Runtime::new();
    let c = rt.container("staged");
    let pid_file = b.path().join("init.pid");
    c.create(&b, &["--pid-file", pid_file.to_str().unwrap()])
        .assert_success();
    let pid = c.pid();
    assert!(pid_alive(pid));
    let written = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(written.trim(), pid.to_string());
    // The pid in state is the container's PID 1, in the joined netns and a
    // new user namespace.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(nspid.ends_with("\t1"), "{nspid}");
    let proc_ns = |n: &str| ns_ino(Path::new(&format!("/proc/{pid}/ns/{n}")));
    assert_eq!(proc_ns("net"), ns_ino(Path::new(&netns.path())));
    assert_ne!(proc_ns("user"), ns_ino(Path::new("/proc/self/ns/user")));
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(
        uid_map.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    let cgroups = cgroup_dirs(pid);
    assert!(!cgroups.is_empty());
    assert!(cgroups.iter().all(|d| d.is_dir()), "{cgroups:?}");
    assert!(find_dir(Path::new(pids_root()), &c.id, 3).is_some());
    c.start().assert_success();
    assert_eq!(c.status(), "running");
    c.cmd("kill", &[], &["KILL"]).assert_success();
    assert!(c.wait_status("stopped", WAIT));
    c.cmd("delete", &[], &[]).assert_success();
    assert!(c.state().is_none());
    std::thread::sleep(Duration::from_millis(50));
    assert_init_reaped(pid);
    let left: Vec<_> = cgroups.iter().filter(|d| d.exists()).collect();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

#[test]
fn staged_namespaces_keep_the_time_and_cgroup_namespace_rules() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    if !rt.is_keel() {
        // runc 1.1 has no time namespace support.
        return;
    }
    let netns = NetNs::new();
    let script = "cut -d. -f1 /proc/uptime; cut -d: -f3 /proc/self/cgroup | sort -u; echo pid=$$";
    let b = userns_in_netns_with(&["sh", "-c", script], &netns, |c| {
        set_ns(c, json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1000000}});
    });
    let out = rt.run_bundle(&b);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    // /proc/uptime reads CLOCK_BOOTTIME: the offset was written before init
    // entered the time namespace.
    let uptime: u64 = lines[0].parse().unwrap();
    let host: u64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(uptime >= host + 999_000, "host {host}: {out:#?}");
    // The cgroup namespace was made once init was in its cgroup.
    assert_eq!(&lines[1..], ["/", "pid=1"], "{out:#?}");
}

#[test]
fn exec_enters_a_user_namespace_and_a_joined_network_namespace() {
    if !berth_testkit::require_root() {
        return;
    }
    let netns = NetNs::new();
    let b = userns_in_netns(&["sleep", "1000"], &netns);
    let rt = Runtime::new();
    let c = rt.container("stagedexec");
    c.run(&b, &["--detach"]).assert_success();
    let out = c.exec(&[
        "sh",
        "-c",
        "echo $(id -u) $(stat -L -c %i /proc/self/ns/net) $(cat /proc/1/comm)",
    ]);
    out.assert_success();
    assert_eq!(
        out.stdout.trim(),
        format!("0 {} sleep", ns_ino(Path::new(&netns.path())))
    );
}

/// Where the pids controller's tree starts on this host.
fn pids_root() -> &'static str {
    if pure_v2() {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/pids"
    }
}

/// The container's own cgroup directories (not the root) on the host.
fn cgroup_dirs(pid: i32) -> Vec<std::path::PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            let dir = match ctrl {
                "pids" | "memory" => format!("/sys/fs/cgroup/{ctrl}{path}"),
                "" if pure_v2() => format!("/sys/fs/cgroup{path}"),
                "" => format!("/sys/fs/cgroup/unified{path}"),
                _ => return None,
            };
            (path != "/").then(|| dir.into())
        })
        .collect()
}

#[test]
fn new_pid_namespace_inside_a_joined_user_namespace() {
    if !berth_testkit::require_root() {
        return;
    }
    let holder = UserNsHolder::new();
    let script = "echo pid=$$; cat /proc/1/comm; stat -L -c %i /proc/self/ns/user; \
                  cat /proc/self/uid_map; id -u";
    let b = bundle_with(&["sh", "-c", script], |c| {
        set_ns(
            c,
            json!({"type": "user", "path": holder.path().to_str().unwrap()}),
        );
        // What the joined namespace maps (runc 1.1 insists on the fields).
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
        drop_sys_mounts(c);
        // Only root is mapped there: no gid 5 for devpts.
        for m in c["mounts"].as_array_mut().unwrap() {
            if let Some(opts) = m["options"].as_array_mut() {
                opts.retain(|o| o != "gid=5");
            }
        }
    });
    let rt = Runtime::new();
    let out = rt.run_bundle(&b);
    out.assert_success();
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    let ino = ns_ino(&holder.path()).to_string();
    assert_eq!(words, ["pid=1", "sh", &ino, "0", "0", "1", "0"], "{out:#?}");
}

#[test]
fn staged_setup_failures_are_reported_and_leave_nothing() {
    if !berth_testkit::require_root() {
        return;
    }
    let netns = NetNs::new();
    let rt = Runtime::new();
    // Fails in the parent, while it writes the maps (overlapping ranges).
    let overlap = userns_in_netns_with(&["true"], &netns, |c| {
        c["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": 100000, "size": 10},
            {"containerID": 5, "hostID": 200000, "size": 10}
        ]);
    });
    // Fails in the forked init, after the staged namespaces.
    let missing = userns_in_netns(&["/no/such/program"], &netns);
    for (bundle, want) in [(overlap, "uid_map"), (missing, "/no/such/program")] {
        let c = rt.container("stagedfail");
        let err = c.create(&bundle, &[]).assert_failure().to_owned();
        if rt.is_keel() {
            assert!(err.contains(want), "{err}");
        }
        assert!(c.state().is_none(), "{} is still known", c.id);
        let left = find_dir(Path::new(pids_root()), &c.id, 3);
        assert!(left.is_none(), "cgroup left behind: {left:?}");
    }
}

/// A directory named `name` at most `depth` levels below `dir`.
fn find_dir(dir: &Path, name: &str, depth: u32) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if !p.is_dir() {
            continue;
        }
        if e.file_name() == name {
            return Some(p);
        }
        if depth > 1 {
            if let Some(found) = find_dir(&p, name, depth - 1) {
                return Some(found);
            }
        }
    }
    None
}
