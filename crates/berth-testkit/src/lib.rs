//! Test fixtures shared by Berth's crates (a dev-dependency only, never part of
//! a public API): busybox rootfs and bundles, privileged-test gating, temp
//! roots that clean up after themselves.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use tempfile::TempDir;

pub mod cli;
pub mod image;
pub mod mounts;
pub mod peers;
pub mod registry;
pub mod tarfix;

/// Where Debian's busybox-static installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Whether privileged tests are required (CI sets `BERTH_PRIVILEGED_TESTS=1`).
pub fn privileged_required() -> bool {
    std::env::var("BERTH_PRIVILEGED_TESTS").is_ok_and(|v| v == "1")
}

/// Gate for tests that need root and a real kernel. Returns `false` (the test
/// should return early) when we are not root and privileged tests are not
/// required; panics when they are required but cannot run.
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        return true;
    }
    assert!(
        !privileged_required(),
        "BERTH_PRIVILEGED_TESTS=1 but the test is not running as root"
    );
    eprintln!("skipping: needs root (set BERTH_PRIVILEGED_TESTS=1 to make this a failure)");
    false
}

/// Whether `/bin/busybox` is a static binary we can drop into a rootfs.
fn busybox_path() -> io::Result<&'static Path> {
    let p = Path::new(BUSYBOX);
    if p.exists() {
        Ok(p)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            "/bin/busybox missing: apt-get install busybox-static",
        ))
    }
}

/// Build a minimal busybox rootfs in `root`: `/bin/busybox` plus an applet
/// symlink for each applet, the usual empty directories, and /etc/passwd and
/// /etc/group with root, a `user` (1000:1000) and `nobody`.
pub fn busybox_rootfs(root: &Path) -> io::Result<()> {
    let bb = busybox_path()?;
    for d in [
        "bin",
        "dev",
        "etc",
        "proc",
        "sys",
        "tmp",
        "root",
        "home/user",
        "var",
        "run",
        "usr/bin",
        "sbin",
    ] {
        std::fs::create_dir_all(root.join(d))?;
    }
    std::fs::copy(bb, root.join("bin/busybox"))?;
    let out = Command::new(bb).arg("--list").output()?;
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        if applet.is_empty() || applet == "busybox" {
            continue;
        }
        let link = root.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link)?;
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nwheel:x:10:user\nuser:x:1000:\nnogroup:x:65534:\n",
    )?;
    std::fs::write(root.join("etc/hostname"), "busybox\n")?;
    Ok(())
}

/// A runc-style default config.json (as `runc spec` writes it) for `args`,
/// terminal off, rootfs `rootfs`.
pub fn default_config(args: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "keel",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// A bundle directory: `rootfs/` (busybox) and `config.json`.
pub struct Bundle {
    dir: TempDir,
}

impl Bundle {
    /// A busybox bundle running `args` with the default config.
    pub fn busybox(args: &[&str]) -> io::Result<Self> {
        Self::with_config(default_config(args))
    }

    /// A busybox bundle with the given config.json value.
    pub fn with_config(config: serde_json::Value) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-bundle-")
            .tempdir()?;
        busybox_rootfs(&dir.path().join("rootfs"))?;
        let b = Self { dir };
        b.write_config(&config)?;
        Ok(b)
    }

    /// Replace config.json.
    pub fn write_config(&self, config: &serde_json::Value) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(config).map_err(io::Error::other)?;
        std::fs::write(self.dir.path().join("config.json"), text)
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The rootfs directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
}

/// A unique container id for a test (`<prefix>-<pid>-<n>`).
pub fn unique_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
