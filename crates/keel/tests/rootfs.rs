//! Root filesystem features, checked from inside real containers
//! (privileged): spec mounts and their options, /dev, propagation, cgroup
//! mounts, idmapped mounts, user namespaces, the console, --no-pivot.
//! The security regressions are in `rootfs_cve.rs`.
//!
//! Runs against keel, or any runtime named by `KEEL_TEST_RUNTIME` (runc…);
//! checks marked keel-only compare keel's own error wording.

mod common;

use std::os::unix::fs::symlink;

use berth_testkit::mounts::{mountinfo_line, own_mountinfo, HostMount};
use berth_testkit::{Bundle, TempDir};
use common::{add_mount, bundle_with, run_script, Outcome, Runtime};
use serde_json::{json, Value};

/// Run a prepared bundle.
fn run_in(bundle: &Bundle) -> Outcome {
    Runtime::new().run_bundle(bundle)
}

/// The propagation fields ("shared:N master:M") of each host mount point.
fn host_propagation() -> Vec<(String, String)> {
    own_mountinfo()
        .lines()
        .filter_map(|l| {
            let (left, _) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            Some((f.get(4)?.to_string(), f.get(6..)?.join(" ")))
        })
        .collect()
}

#[test]
fn spec_tmpfs_options_show_in_mountinfo() {
    if !berth_testkit::require_root() {
        return;
    }
    let out = run_script(
        "grep ' /data ' /proc/self/mountinfo; stat -c 'mode=%a' /data",
        |c| {
            add_mount(
                c,
                json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "noexec", "noatime", "size=1m", "mode=700"]}),
            )
        },
    );
    out.assert_success();
    let line = mountinfo_line(&out.stdout, "/data").expect("a mount at /data");
    assert!(line.contains("rw,nosuid,nodev,noexec,noatime"), "{line}");
    assert!(
        line.contains("- tmpfs tmpfs rw,size=1024k,mode=700"),
        "{line}"
    );
    assert!(out.stdout.contains("mode=700"), "{}", out.stdout);
}

#[test]
fn readonly_root_refuses_writes_and_has_the_default_mounts() {
    if !berth_testkit::require_root() {
        return;
    }
    let out = run_script(
        "touch /x 2>&1; echo rc=$?; cat /proc/self/mountinfo",
        |_| {},
    );
    out.assert_success();
    assert!(
        out.stdout.contains("Read-only file system"),
        "{}",
        out.stdout
    );
    let info = &out.stdout;
    let root = mountinfo_line(info, "/").expect("a / mount");
    assert!(
        root.split(' ').nth(5).unwrap_or("").starts_with("ro"),
        "{root}"
    );
    for (at, fstype) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
        ("/sys/fs/cgroup/memory", "cgroup"),
    ] {
        let line = mountinfo_line(info, at).unwrap_or_else(|| panic!("no mount at {at}:\n{info}"));
        assert!(line.contains(&format!(" - {fstype} ")), "{line}");
    }
    let sys = mountinfo_line(info, "/sys").unwrap_or_default();
    assert!(sys.contains(" ro,nosuid,nodev,noexec"), "{sys}");
    let cg = mountinfo_line(info, "/sys/fs/cgroup/memory").unwrap_or_default();
    assert!(
        cg.contains(" ro,"),
        "cgroup hierarchies are read-only: {cg}"
    );
}

#[test]
fn devices_exist_with_their_numbers_and_links() {
    if !berth_testkit::require_root() {
        return;
    }
    let script = "for d in null zero full random urandom tty net/tun; do stat -c \"%n %F %t:%T %a %u:%g\" /dev/$d; done; \
                  for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done; stat -c '%t:%T' /dev/pts/ptmx; \
                  grep ' /dev/pts ' /proc/self/mountinfo";
    let out = run_script(script, |c| {
        c["linux"]["devices"] = json!([
            {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 0o600, "uid": 12, "gid": 34}
        ]);
    });
    out.assert_success();
    let s = &out.stdout;
    for want in [
        "/dev/null character special file 1:3 666 0:0",
        "/dev/zero character special file 1:5 666 0:0",
        "/dev/full character special file 1:7 666 0:0",
        "/dev/random character special file 1:8 666 0:0",
        "/dev/urandom character special file 1:9 666 0:0",
        "/dev/tty character special file 5:0 666 0:0",
        "/dev/net/tun character special file a:c8 600 12:34",
        "pts/ptmx\n/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\n5:2\n",
    ] {
        assert!(s.contains(want), "missing {want:?} in:\n{s}");
    }
    let pts = mountinfo_line(s, "/dev/pts").expect("devpts mounted");
    assert!(
        pts.contains("ptmxmode=666") && pts.contains("gid=5"),
        "{pts}"
    );
}

#[test]
fn recursive_read_only_covers_submounts_and_plain_ro_does_not() {
    if !berth_testkit::require_root() {
        return;
    }
    let host = TempDir::new().expect("tempdir");
    let _sub = HostMount::tmpfs(&host.path().join("sub"));
    let script = "touch /rro/a 2>/dev/null; echo rro-top=$?; touch /rro/sub/a 2>/dev/null; echo rro-sub=$?; \
                  touch /ro/b 2>/dev/null; echo ro-top=$?; touch /ro/sub/b 2>/dev/null; echo ro-sub=$?";
    let out = run_script(script, |c| {
        let src = host.path().to_string_lossy().into_owned();
        add_mount(
            c,
            json!({"destination": "/rro", "type": "bind", "source": src, "options": ["rbind", "rro"]}),
        );
        add_mount(
            c,
            json!({"destination": "/ro", "type": "bind", "source": src, "options": ["rbind", "ro"]}),
        );
    });
    out.assert_success();
    let s = &out.stdout;
    assert!(
        s.contains("rro-top=1\nrro-sub=1\nro-top=1\nro-sub=0\n"),
        "{s}"
    );
}

#[test]
fn bind_mount_propagation_rslave_receives_host_mounts() {
    if !berth_testkit::require_root() {
        return;
    }
    let host = TempDir::new().expect("tempdir");
    let shared = HostMount::shared_bind(host.path());
    let before = host_propagation();
    let bundle = bundle_with(
        &[
            "sh",
            "-c",
            "sleep 1; cat /vol/late/hello 2>&1; grep ' /vol ' /proc/self/mountinfo",
        ],
        |c| {
            let src = host.path().to_string_lossy().into_owned();
            add_mount(
                c,
                json!({"destination": "/vol", "type": "bind", "source": src, "options": ["rbind", "rslave"]}),
            );
        },
    );
    let late = host.path().join("late");
    let mounter = {
        let late = late.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(400));
            let m = HostMount::tmpfs(&late);
            std::fs::write(late.join("hello"), "from the host\n").expect("write");
            m
        })
    };
    let out = run_in(&bundle);
    let late_mount = mounter.join().expect("mounter thread");
    out.assert_success();
    assert!(out.stdout.contains("from the host"), "{}", out.stdout);
    let vol = mountinfo_line(&out.stdout, "/vol").expect("/vol");
    assert!(vol.contains("master:"), "{vol}");
    drop(late_mount);
    drop(shared);
    let after = host_propagation();
    assert_eq!(
        before
            .iter()
            .filter(|(p, _)| !p.starts_with("/tmp"))
            .collect::<Vec<_>>(),
        after
            .iter()
            .filter(|(p, _)| !p.starts_with("/tmp"))
            .collect::<Vec<_>>(),
        "the host's mount propagation changed"
    );
}

#[test]
fn rootfs_propagation_is_applied_to_the_container_root() {
    if !berth_testkit::require_root() {
        return;
    }
    for (value, want_master, want_shared) in [
        (None, true, false),
        (Some("rprivate"), false, false),
        (Some("rslave"), true, false),
        (Some("rshared"), true, true),
    ] {
        let bundle = bundle_with(&["awk", "$5 == \"/\"", "/proc/self/mountinfo"], |c| {
            if let Some(v) = value {
                c["linux"]["rootfsPropagation"] = json!(v);
            }
        });
        let _shared = HostMount::shared_bind(&bundle.rootfs());
        let out = run_in(&bundle);
        out.assert_success();
        let line = out.stdout.trim();
        assert_eq!(line.contains("master:"), want_master, "{value:?}: {line}");
        assert_eq!(line.contains("shared:"), want_shared, "{value:?}: {line}");
    }
}

#[test]
fn idmapped_bind_mount_shows_the_mapped_owner() {
    if !berth_testkit::require_root() {
        return;
    }
    let host = TempDir::new().expect("tempdir");
    std::fs::write(host.path().join("root-owned"), "x").expect("write");
    let script = "stat -c '%u:%g' /idm/root-owned; stat -c '%u:%g' /plain/root-owned; grep ' /idm ' /proc/self/mountinfo";
    let out = run_script(script, |c| {
        let src = host.path().to_string_lossy().into_owned();
        add_mount(
            c,
            json!({"destination": "/idm", "type": "bind", "source": src, "options": ["bind", "idmap"],
                   "uidMappings": [{"containerID": 0, "hostID": 1234, "size": 10}],
                   "gidMappings": [{"containerID": 0, "hostID": 5678, "size": 10}]}),
        );
        add_mount(
            c,
            json!({"destination": "/plain", "type": "bind", "source": src, "options": ["bind"]}),
        );
    });
    out.assert_success();
    assert!(out.stdout.starts_with("1234:5678\n0:0\n"), "{}", out.stdout);
    assert!(out.stdout.contains("idmapped"), "{}", out.stdout);
}

/// Config edits for a user namespace mapping 0 to host 100000.
fn with_userns(c: &mut Value) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "user"}));
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
}

#[test]
fn user_namespace_container_gets_bound_devices_masks_and_idmapped_mounts() {
    if !berth_testkit::require_root() {
        return;
    }
    let host = TempDir::new().expect("tempdir");
    std::fs::write(host.path().join("root-owned"), "x").expect("write");
    let script =
        "stat -c '%t:%T' /dev/null; echo hi > /dev/null && echo null-ok; wc -c < /proc/keys; \
                  echo x 2>/dev/null > /proc/sys/kernel/hostname; echo sys=$?; \
                  stat -c '%u:%g' /idm/root-owned; stat -c '%u:%g' /plain/root-owned";
    let bundle = bundle_with(&["sh", "-c", script], |c| {
        with_userns(c);
        let src = host.path().to_string_lossy().into_owned();
        add_mount(
            c,
            json!({"destination": "/idm", "type": "bind", "source": src, "options": ["bind", "idmap"],
                   "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                   "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}),
        );
        add_mount(
            c,
            json!({"destination": "/plain", "type": "bind", "source": src, "options": ["bind"]}),
        );
    });
    // The rootfs belongs to the host's root, not writable from the userns.
    std::fs::create_dir(bundle.rootfs().join("idm")).expect("mkdir");
    std::fs::create_dir(bundle.rootfs().join("plain")).expect("mkdir");
    let out = run_in(&bundle);
    out.assert_success();
    assert_eq!(out.stdout, "1:3\nnull-ok\n0\nsys=1\n0:0\n65534:65534\n");
}

#[test]
fn user_namespace_sharing_the_host_network_gets_a_read_only_host_sys() {
    if !berth_testkit::require_root() {
        return;
    }
    let script = "grep ' /sys ' /proc/self/mountinfo | cut -d' ' -f6,9; touch /sys/x 2>/dev/null; echo touch=$?; \
                  test -d /sys/class/net/lo && echo has-lo";
    let out = run_script(script, |c| {
        with_userns(c);
        let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.retain(|n| n["type"] != "network");
    });
    out.assert_success();
    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("ro,") && first.ends_with(" sysfs"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("touch=1\nhas-lo\n"), "{}", out.stdout);
}

#[test]
fn cgroup_mount_has_every_host_hierarchy() {
    if !berth_testkit::require_root() {
        return;
    }
    let out = run_script(
        "ls /sys/fs/cgroup; cat /sys/fs/cgroup/pids/pids.max 2>&1 | head -1",
        |_| {},
    );
    out.assert_success();
    let host: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
        .expect("host cgroups")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "unified")
        .collect();
    for h in &host {
        assert!(
            out.stdout.lines().any(|l| l == h),
            "hierarchy {h} missing:\n{}",
            out.stdout
        );
    }
}

#[test]
fn cgroup_mount_without_cgroupns_binds_the_containers_own_cgroup() {
    if !berth_testkit::require_root() {
        return;
    }
    let script = "grep ':memory:' /proc/self/cgroup | cut -d: -f3; grep ' /sys/fs/cgroup/memory ' /proc/self/mountinfo | cut -d' ' -f4; \
                  test -e /sys/fs/cgroup/memory/memory.limit_in_bytes && echo has-files";
    let out = run_script(script, |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.retain(|n| n["type"] != "cgroup");
    });
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert_eq!(
        lines[0], lines[1],
        "the mount's root is the container's cgroup"
    );
    assert_eq!(lines[2], "has-files");
}

#[test]
fn file_bind_mounts_get_a_file_mount_point_and_ro_holds() {
    if !berth_testkit::require_root() {
        return;
    }
    let host = TempDir::new().expect("tempdir");
    let file = host.path().join("greeting");
    std::fs::write(&file, "hello from the host\n").expect("write");
    let script = "cat /etc/greeting; echo x 2>/dev/null >> /etc/greeting; echo append=$?; cat /etc/greeting | wc -l";
    let bundle = bundle_with(&["sh", "-c", script], |c| {
        c["root"]["readonly"] = json!(false);
        add_mount(
            c,
            json!({"destination": "/etc/greeting", "type": "bind",
                   "source": file.to_string_lossy(), "options": ["bind", "ro", "nosuid"]}),
        );
    });
    let out = run_in(&bundle);
    out.assert_success();
    assert_eq!(out.stdout, "hello from the host\nappend=1\n1\n");
    assert!(
        bundle.rootfs().join("etc/greeting").is_file(),
        "mount point is a file"
    );
}

#[test]
fn tmpcopyup_tmpfs_starts_with_the_covered_files() {
    if !berth_testkit::require_root() {
        return;
    }
    let script = "grep ' /etc ' /proc/self/mountinfo | grep -c tmpfs; head -1 /etc/passwd; readlink /etc/link; \
                  stat -c '%a %u' /etc/sub/secret; echo new > /etc/new && cat /etc/new";
    let bundle = bundle_with(&["sh", "-c", script], |c| {
        add_mount(
            c,
            json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "mode=755"]}),
        );
    });
    let etc = bundle.rootfs().join("etc");
    symlink("passwd", etc.join("link")).expect("symlink");
    std::fs::create_dir(etc.join("sub")).expect("mkdir");
    std::fs::write(etc.join("sub/secret"), "s").expect("write");
    std::os::unix::fs::chown(etc.join("sub/secret"), Some(42), None).expect("chown");
    std::fs::set_permissions(
        etc.join("sub/secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .expect("chmod");
    let out = run_in(&bundle);
    out.assert_success();
    assert_eq!(
        out.stdout,
        "1\nroot:x:0:0:root:/root:/bin/sh\npasswd\n640 42\nnew\n"
    );
    assert!(!etc.join("new").exists(), "the write went to the tmpfs");
}

#[test]
fn terminal_container_has_the_pty_on_dev_console() {
    if !berth_testkit::require_root() {
        return;
    }
    let bundle = bundle_with(
        &["sh", "-c", "stat -c '%t' /dev/console; grep ' /dev/console ' /proc/self/mountinfo | cut -d' ' -f9; tty"],
        |c| c["process"]["terminal"] = json!(true),
    );
    let rt = Runtime::new();
    let c = rt.container("console");
    // `script` gives the foreground run a terminal to forward.
    let cmdline = format!(
        "{} --root {} run --bundle {} {}",
        rt.bin().display(),
        rt.root().display(),
        bundle.path().display(),
        c.id
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script(1)");
    // script(1) may echo a stray NUL, raw or as "^@".
    let text = String::from_utf8_lossy(&out.stdout)
        .replace(['\r', '\0'], "")
        .replace("^@", "");
    assert!(out.status.success(), "{text}");
    // pty slaves have major 136 (0x88)
    assert!(text.contains("88\ndevpts\n/dev/pts/"), "{text}");
}

#[test]
fn no_pivot_runs_in_the_rootfs() {
    if !berth_testkit::require_root() {
        return;
    }
    let bundle = bundle_with(
        &[
            "sh",
            "-c",
            "ls /bin/busybox && hostname && wc -c < /proc/keys",
        ],
        |_| {},
    );
    let rt = Runtime::new();
    let c = rt.container("nopivot");
    let out = c.run(&bundle, &["--no-pivot"]);
    out.assert_success();
    assert_eq!(out.stdout, "/bin/busybox\nkeel\n0\n");
}

#[test]
fn mount_errors_name_the_mount() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    let bundle = bundle_with(&["true"], |c| {
        add_mount(
            c,
            json!({"destination": "/bad", "type": "nosuchfs", "source": "x"}),
        );
    });
    let out = rt.run_bundle(&bundle);
    let err = out.assert_failure();
    if rt.is_keel() {
        assert!(err.contains("mount /bad (nosuchfs)"), "{err}");
    }
}
