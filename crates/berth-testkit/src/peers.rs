//! Private instances of the peer engines (containerd, dockerd) for interop
//! tests, each under its own temporary root, stopped and cleaned up on drop.
//!
//! Neither touches the host's network: containerd runs without its CRI plugin
//! and dockerd with `--iptables=false --ip-forward=false --bridge=none`, so
//! containers must use `--network none` (docker) or the default host-less
//! namespace (ctr).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::image::{Layer, OciLayout};

/// Make the test process a child subreaper, so shims orphaned by a stopped
/// daemon are reparented to us rather than to a PID 1 that reaps lazily.
pub fn become_subreaper() {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Run a command and return its output, with a readable error when it cannot start.
pub fn run(cmd: &mut Command) -> io::Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {cmd:?}: {e}")))
}

/// Output as text, panicking with stdout+stderr when the command failed.
pub fn check(cmd: &mut Command) -> String {
    let out = match run(cmd) {
        Ok(o) => o,
        Err(e) => panic!("{e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> io::Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{what} did not come up within {timeout:?}"),
    ))
}

/// Our direct children whose command name is `comm`: (pid, zombie, cmdline).
fn children_named(comm: &str) -> Vec<(libc::pid_t, bool, String)> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<libc::pid_t>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so split at the last ')'
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let mut rest = stat[close + 1..].split_whitespace();
        let (state, ppid) = (rest.next(), rest.next());
        if &stat[open + 1..close] != comm || ppid != Some(me.as_str()) {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        found.push((pid, state == Some("Z"), cmdline));
    }
    found
}

/// Reap the shims the stopped daemon left to us (we are their subreaper), so
/// none is left as a zombie; a shim of *this* instance (its command line
/// names `base`) still running after `grace` is killed by pid. Shims of other
/// instances in the same test process are only reaped once they have exited.
fn reap_shims(base: &Path, grace: Duration) {
    let base = base.to_string_lossy().into_owned();
    let start = Instant::now();
    loop {
        let shims = children_named("containerd-shim");
        let mut ours_alive = Vec::new();
        for (pid, zombie, cmdline) in shims {
            if zombie {
                // SAFETY: waitpid on a child of ours that has exited; no memory passed.
                unsafe {
                    libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
                }
            } else if cmdline.contains(&base) {
                ours_alive.push(pid);
            }
        }
        if ours_alive.is_empty() {
            return;
        }
        if start.elapsed() >= grace {
            for pid in ours_alive {
                // SAFETY: kill and waitpid on a shim of this instance, our child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop_child(child: &mut Child, grace: Duration) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill with a pid we spawned and still own (not yet reaped).
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let start = Instant::now();
    while start.elapsed() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Unmount (lazily) every mount under `root`, deepest first.
pub fn unmount_under(root: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = root.to_string_lossy().into_owned();
    let mut points: Vec<String> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .map(str::to_owned)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        if let Ok(c) = std::ffi::CString::new(p) {
            // SAFETY: c is a valid NUL-terminated path; umount2 only reads it.
            unsafe {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
}

/// containerd 1.6 shims put their sockets under `/run/containerd/s` whatever
/// the daemon's state dir is. Remembers whether `/run/containerd` existed, so
/// that [`SharedRunDir::remove_if_ours`] removes only what the test created.
struct SharedRunDir {
    existed: bool,
}

const CONTAINERD_RUN: &str = "/run/containerd";

impl SharedRunDir {
    fn note() -> Self {
        Self {
            existed: Path::new(CONTAINERD_RUN).exists(),
        }
    }

    /// Remove `/run/containerd` and its subdirectories if the test created
    /// them and they are empty (never anything with content in it).
    fn remove_if_ours(&self) {
        if self.existed {
            return;
        }
        let base = Path::new(CONTAINERD_RUN);
        for sub in ["s", "fifo", "runc/default", "runc/moby", "runc"] {
            let _ = std::fs::remove_dir(base.join(sub));
        }
        let _ = std::fs::remove_dir(base);
    }
}

/// Remove (when empty) the cgroup `name` directly under every mounted
/// hierarchy in `/sys/fs/cgroup` (v1 controllers and the v2/unified tree).
pub fn remove_cgroup_everywhere(name: &str) {
    let name = name.trim_start_matches('/');
    if name.is_empty() {
        return;
    }
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(name));
    for h in hierarchies.flatten() {
        let _ = std::fs::remove_dir(h.path().join(name));
    }
}

/// Those of `names` (top-level cgroups) that exist in no hierarchy now: a
/// daemon about to start may create them, and its `Drop` removes them again
/// (when empty; a cgroup someone else uses stays).
fn absent_cgroups(names: &[&'static str]) -> Vec<&'static str> {
    let hierarchies: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names
        .iter()
        .copied()
        .filter(|n| {
            !Path::new("/sys/fs/cgroup").join(n).exists()
                && !hierarchies.iter().any(|h| h.join(n).exists())
        })
        .collect()
}

/// A docker-archive (`docker load` / `ctr image import` input) of a busybox
/// image named `name` (e.g. `docker.io/library/kbusybox:latest`).
pub fn busybox_docker_archive(dir: &Path, name: &str) -> io::Result<PathBuf> {
    let layout = dir.join("layout");
    let mut oci = OciLayout::create(&layout)?;
    let m = oci.image(&[Layer::busybox()?], &["/bin/sh"], "linux", "amd64", None)?;
    oci.tag("latest", &m)?;
    let archive = dir.join("busybox.tar");
    check(
        Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker-archive:{}:{name}", archive.display())),
    );
    Ok(archive)
}

/// A private containerd (Debian's 1.6) with its own root, state and socket.
pub struct Containerd {
    child: Option<Child>,
    base: tempfile::TempDir,
    run_dir: SharedRunDir,
    /// cgroup parents the daemon will create that did not exist before it
    new_cgroups: Vec<&'static str>,
}

impl Containerd {
    /// Start it and wait for its socket.
    pub fn start() -> io::Result<Self> {
        become_subreaper();
        let run_dir = SharedRunDir::note();
        // containers of ctr's namespace "default" go under /default/<id>
        let new_cgroups = absent_cgroups(&["default"]);
        let base = tempfile::Builder::new()
            .prefix("berth-test-containerd-")
            .tempdir_in("/var/tmp")?;
        let b = base.path();
        let config = format!(
            "version = 2\nroot = \"{r}/root\"\nstate = \"{r}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{r}/c.sock\"\n[ttrpc]\n  address = \"{r}/c.sock.ttrpc\"\n\
             [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n",
            r = b.display()
        );
        std::fs::write(b.join("config.toml"), config)?;
        let log = std::fs::File::create(b.join("containerd.log"))?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(b.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        std::fs::create_dir_all(b.join("runc-root"))?;
        std::fs::create_dir_all(b.join("fifo"))?;
        let me = Self {
            child: Some(child),
            base,
            run_dir,
            new_cgroups,
        };
        let sock = me.socket();
        wait_for("containerd", Duration::from_secs(20), || {
            sock.exists()
                && Command::new("ctr")
                    .arg("-a")
                    .arg(&sock)
                    .arg("version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
        })?;
        Ok(me)
    }

    /// The gRPC socket.
    pub fn socket(&self) -> PathBuf {
        self.base.path().join("c.sock")
    }

    /// A scratch directory inside the instance's root.
    pub fn dir(&self) -> &Path {
        self.base.path()
    }

    /// The `--runc-root` to give `ctr run` so the runtime's state stays in
    /// the instance's temporary root (not `/run/containerd/runc`).
    pub fn runc_root(&self) -> PathBuf {
        self.base.path().join("runc-root")
    }

    /// The `--fifo-dir` for `ctr run` / `ctr task exec` (not `/run/containerd/fifo`).
    pub fn fifo_dir(&self) -> PathBuf {
        self.base.path().join("fifo")
    }

    /// `ctr -a SOCK ARGS…`
    pub fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("-a").arg(self.socket());
        c
    }

    /// The daemon's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.base.path().join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // every task killed and deleted, so shims exit; then the daemon
        if let Ok(out) = run(self.ctr().args(["tasks", "ls", "-q"])) {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = run(self.ctr().args(["tasks", "kill", "-s", "SIGKILL", id]));
                std::thread::sleep(Duration::from_millis(100));
                let _ = run(self.ctr().args(["tasks", "delete", "-f", id]));
            }
        }
        if let Ok(out) = run(self.ctr().args(["containers", "ls", "-q"])) {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = run(self.ctr().args(["containers", "delete", id]));
            }
        }
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(10));
        }
        reap_shims(self.base.path(), Duration::from_secs(5));
        unmount_under(self.base.path());
        for name in &self.new_cgroups {
            remove_cgroup_everywhere(name);
        }
        self.run_dir.remove_if_ours();
    }
}

/// A private dockerd (Debian's 20.10) with its own data root, exec root,
/// socket and managed containerd, without any host network changes.
pub struct Dockerd {
    child: Option<Child>,
    base: tempfile::TempDir,
    cgroup_parent: String,
    run_dir: SharedRunDir,
    /// cgroup parents the daemon will create that did not exist before it
    new_cgroups: Vec<&'static str>,
}

impl Dockerd {
    /// Start it with the extra runtimes `(name, path)` and wait until it answers.
    pub fn start(runtimes: &[(&str, &Path)]) -> io::Result<Self> {
        become_subreaper();
        let run_dir = SharedRunDir::note();
        let cgroup_parent = format!("/{}", crate::unique_id("berth-test-docker"));
        // dockerd makes /docker even when its containers go elsewhere
        let new_cgroups = absent_cgroups(&["docker"]);
        let base = tempfile::Builder::new()
            .prefix("berth-test-dockerd-")
            .tempdir_in("/var/tmp")?;
        let b = base.path();
        let log = std::fs::File::create(b.join("dockerd.log"))?;
        let mut cmd = Command::new("dockerd");
        cmd.arg("--data-root")
            .arg(b.join("data"))
            .arg("--exec-root")
            .arg(b.join("exec"))
            .arg("--pidfile")
            .arg(b.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", b.join("docker.sock").display()))
            .arg("--cgroup-parent")
            .arg(&cgroup_parent)
            .args([
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--bridge=none",
                "--storage-driver=overlay2",
                "--log-level=warn",
            ]);
        for (name, path) in runtimes {
            cmd.arg("--add-runtime")
                .arg(format!("{name}={}", path.display()));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let me = Self {
            child: Some(child),
            base,
            cgroup_parent,
            run_dir,
            new_cgroups,
        };
        wait_for("dockerd", Duration::from_secs(60), || {
            me.docker()
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map_err(|e| io::Error::new(e.kind(), format!("{e}; log:\n{}", me.log())))?;
        Ok(me)
    }

    /// `docker -H unix://SOCK` (Debian's 20.10 CLI, matching the daemon).
    pub fn docker(&self) -> Command {
        let cli = if Path::new("/usr/bin/docker").exists() {
            "/usr/bin/docker"
        } else {
            "docker"
        };
        let mut c = Command::new(cli);
        c.arg("-H").arg(format!(
            "unix://{}",
            self.base.path().join("docker.sock").display()
        ));
        c
    }

    /// A scratch directory inside the instance's root.
    pub fn dir(&self) -> &Path {
        self.base.path()
    }

    /// The daemon's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.base.path().join("dockerd.log")).unwrap_or_default()
    }

    /// The cgroup parent (`--cgroup-parent`) under which every container of
    /// this instance gets its cgroup, e.g. `/sys/fs/cgroup/pids/<parent>/<id>`.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Ok(out) = run(self.docker().args(["ps", "-aq"])) {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if !ids.is_empty() {
                let _ = run(self.docker().args(["rm", "-f"]).args(&ids));
            }
        }
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(20));
        }
        reap_shims(self.base.path(), Duration::from_secs(5));
        unmount_under(self.base.path());
        remove_cgroup_everywhere(&self.cgroup_parent);
        for name in &self.new_cgroups {
            remove_cgroup_everywhere(name);
        }
        self.run_dir.remove_if_ours();
    }
}
