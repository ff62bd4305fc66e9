//! Regressions for the runc CVE classes of the root filesystem, checked with
//! real containers (privileged):
//! * CVE-2021-30465: a mount destination that is, or becomes while `create`
//!   runs, a symlink must not place a mount outside the rootfs;
//! * CVE-2019-19921: /proc and /sys are mounted only over real directories;
//! * maskedPaths/readonlyPaths cannot be bypassed through /proc/*/root or
//!   symlinks.
//!
//! Runs against keel, or any runtime named by `KEEL_TEST_RUNTIME` (runc…).

mod common;

use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use berth_testkit::mounts::{host_mountinfo_outside_tmp, host_mounts_under};
use berth_testkit::unique_id;
use common::{add_mount, bundle_with, run_script, Runtime};
use serde_json::json;

#[test]
fn masked_paths_read_empty_even_through_proc_root_and_symlinks() {
    if !berth_testkit::require_root() {
        return;
    }
    let script = "for p in /proc/keys /proc/self/root/proc/keys /proc/1/root/proc/keys /keys-link /proc/timer_list; do \
                  printf '%s=%s\\n' $p $(wc -c < $p); done; ls -A /sys/firmware | wc -l; touch /sys/firmware/x 2>/dev/null; echo touch=$?";
    let bundle = bundle_with(&["sh", "-c", script], |_| {});
    symlink("/proc/keys", bundle.rootfs().join("keys-link")).expect("symlink");
    let out = Runtime::new().run_bundle(&bundle);
    out.assert_success();
    for p in [
        "/proc/keys",
        "/proc/self/root/proc/keys",
        "/proc/1/root/proc/keys",
        "/keys-link",
        "/proc/timer_list",
    ] {
        assert!(
            out.stdout.contains(&format!("{p}=0\n")),
            "{p} not masked:\n{}",
            out.stdout
        );
    }
    assert!(
        out.stdout.contains("\n0\ntouch=1"),
        "/sys/firmware not an empty read-only dir:\n{}",
        out.stdout
    );
}

#[test]
fn readonly_paths_cannot_be_written_by_any_route() {
    if !berth_testkit::require_root() {
        return;
    }
    let script = "for p in /proc/sys/kernel/hostname /proc/self/root/proc/sys/kernel/hostname /proc/1/root/proc/sys/kernel/hostname; do \
                  echo x 2>/dev/null > $p; echo \"$p=$?\"; done; hostname";
    let out = run_script(script, |_| {});
    out.assert_success();
    for p in [
        "/proc/sys/kernel/hostname",
        "/proc/self/root/proc/sys/kernel/hostname",
        "/proc/1/root/proc/sys/kernel/hostname",
    ] {
        assert!(
            out.stdout.contains(&format!("{p}=1")),
            "{p} writable:\n{}",
            out.stdout
        );
    }
    assert!(out.stdout.ends_with("keel\n"), "{}", out.stdout);
}

// ---- CVE-2021-30465 class: mount destinations that are (or become) symlinks

/// A host path that must never appear: `/tmp/<unique>`.
fn marker() -> PathBuf {
    std::env::temp_dir().join(unique_id("keel-escape"))
}

#[test]
fn symlinked_destinations_resolve_inside_the_rootfs() {
    if !berth_testkit::require_root() {
        return;
    }
    let abs = marker();
    let rel = marker();
    let host_info_before = host_mountinfo_outside_tmp();
    let script = format!(
        "grep -c ' {a}/m ' /proc/self/mountinfo; grep -c ' {r}/m ' /proc/self/mountinfo",
        a = abs.display(),
        r = rel.display()
    );
    let bundle = bundle_with(&["sh", "-c", &script], |c| {
        add_mount(
            c,
            json!({"destination": "/to-root/m", "type": "tmpfs", "source": "tmpfs"}),
        );
        add_mount(
            c,
            json!({"destination": "/climb/m", "type": "tmpfs", "source": "tmpfs"}),
        );
        add_mount(
            c,
            json!({"destination": "/slash/m2", "type": "tmpfs", "source": "tmpfs"}),
        );
    });
    let r = bundle.rootfs();
    symlink(&abs, r.join("to-root")).expect("symlink");
    symlink(
        format!("../../../../../../../../..{}", rel.display()),
        r.join("climb"),
    )
    .expect("symlink");
    symlink("/", r.join("slash")).expect("symlink");
    let out = Runtime::new().run_bundle(&bundle);
    out.assert_success();
    assert_eq!(
        out.stdout, "1\n1\n",
        "the mounts must land inside the rootfs"
    );
    assert!(
        !abs.exists() && !rel.exists(),
        "a path outside the rootfs was created"
    );
    assert!(r
        .join(abs.strip_prefix("/").unwrap_or(&abs))
        .join("m")
        .is_dir());
    assert!(r.join("m2").is_dir(), "/slash/m2 lands at the rootfs' /m2");
    assert_eq!(
        host_info_before,
        host_mountinfo_outside_tmp(),
        "the host's mount table changed"
    );
    assert!(!host_mounts_under(&abs) && !host_mounts_under(&rel));
}

#[test]
fn destination_swapped_to_a_symlink_during_create_never_escapes() {
    if !berth_testkit::require_root() {
        return;
    }
    let escape = marker();
    let host_info_before = host_mountinfo_outside_tmp();
    let bundle = bundle_with(&["true"], |c| {
        add_mount(
            c,
            json!({"destination": "/race/inner/m", "type": "tmpfs", "source": "tmpfs"}),
        );
    });
    let r = bundle.rootfs();
    std::fs::create_dir_all(r.join("race/inner")).expect("mkdir");
    symlink(
        format!("../../../../../../../../..{}", escape.display()),
        r.join("race-link"),
    )
    .expect("symlink");
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, r) = (stop.clone(), r.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _ = rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    r.join("race"),
                    rustix::fs::CWD,
                    r.join("race-link"),
                    rustix::fs::RenameFlags::EXCHANGE,
                );
                swaps += 1;
            }
            swaps
        })
    };
    let rt = Runtime::new();
    let mut ok = 0;
    for _ in 0..25 {
        if rt.run_bundle(&bundle).code == 0 {
            ok += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().expect("swapper");
    assert!(swaps > 100, "the race did not run");
    assert!(
        !escape.exists(),
        "a mount point was created outside the rootfs ({ok}/25 runs succeeded)"
    );
    assert_eq!(
        host_info_before,
        host_mountinfo_outside_tmp(),
        "the host's mount table changed"
    );
    assert!(!host_mounts_under(&escape));
    eprintln!("race: {ok}/25 runs succeeded during {swaps} swaps");
}

#[test]
fn proc_and_sys_refuse_symlink_destinations() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    for dir in ["proc", "sys"] {
        let bundle = bundle_with(&["true"], |_| {});
        let r = bundle.rootfs();
        std::fs::remove_dir(r.join(dir)).expect("rmdir");
        std::fs::create_dir(r.join("elsewhere")).expect("mkdir");
        symlink("elsewhere", r.join(dir)).expect("symlink");
        let out = rt.run_bundle(&bundle);
        let err = out.assert_failure();
        if rt.is_keel() {
            assert!(
                err.contains(&format!("/{dir}")) && err.contains("is a symlink"),
                "{err}"
            );
        }
        assert_eq!(
            std::fs::read_dir(r.join("elsewhere"))
                .map(|d| d.count())
                .unwrap_or(0),
            0
        );
    }
}

/// Repairs the host's /dev if a test broke it (it must not): recreates
/// /dev/ptmx, removes the test's device node.
struct HostPtmxGuard;

impl Drop for HostPtmxGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file("/dev/keel-test-node");
        let ptmx = std::path::Path::new("/dev/ptmx");
        let is_char = std::fs::symlink_metadata(ptmx)
            .map(|m| std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type()))
            .unwrap_or(false);
        if !is_char {
            let _ = std::fs::remove_file(ptmx);
            let _ = std::process::Command::new("mknod")
                .args(["-m", "666", "/dev/ptmx", "c", "5", "2"])
                .status();
        }
    }
}

#[test]
fn host_dev_bound_behind_a_symlink_is_left_alone() {
    if !berth_testkit::require_root() {
        return;
    }
    let rt = Runtime::new();
    if !rt.is_keel() {
        // runc 1.1.5 only recognises a /dev bind by its literal destination
        // and would replace the host's /dev/ptmx here.
        return;
    }
    let _restore = HostPtmxGuard;
    let before = std::fs::symlink_metadata("/dev/ptmx").expect("host /dev/ptmx");
    let bundle = bundle_with(&["sh", "-c", "test -c /dev/ptmx && echo char"], |c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        mounts.retain(|m| !m["destination"].as_str().unwrap_or("").starts_with("/dev"));
        mounts.push(json!({"destination": "/devlink", "type": "bind", "source": "/dev", "options": ["rbind"]}));
        c["linux"]["devices"] =
            json!([{"path": "/dev/keel-test-node", "type": "c", "major": 1, "minor": 3}]);
    });
    std::fs::remove_dir(bundle.rootfs().join("dev")).expect("rmdir dev");
    symlink("devlink-target", bundle.rootfs().join("devlink")).expect("symlink");
    symlink("devlink-target", bundle.rootfs().join("dev")).expect("symlink");
    let out = rt.run_bundle(&bundle);
    out.assert_success();
    assert_eq!(out.stdout, "char\n");
    let after = std::fs::symlink_metadata("/dev/ptmx").expect("host /dev/ptmx");
    assert_eq!(
        before.file_type(),
        after.file_type(),
        "the host's /dev/ptmx was replaced"
    );
    assert!(
        !std::path::Path::new("/dev/keel-test-node").exists(),
        "a node was created in the host's /dev"
    );
}
