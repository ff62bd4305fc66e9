//! Shared harness for keel's privileged integration tests (OWNER: keel core).
//!
//! The suite is runtime-agnostic: the binary under test comes from the
//! environment variable `KEEL_TEST_RUNTIME` (a path or a name on `$PATH`, e.g.
//! `KEEL_TEST_RUNTIME=runc`), and defaults to the keel binary cargo built.
//!
//! ```ignore
//! mod common;
//! use common::Runtime;
//!
//! #[test]
//! fn hostname_is_set() {
//!     if !berth_testkit::require_root() { return; }
//!     let rt = Runtime::new();
//!     let bundle = berth_testkit::Bundle::busybox(&["hostname"]).unwrap();
//!     let out = rt.run_bundle(&bundle);
//!     out.assert_success();
//!     assert_eq!(out.stdout.trim(), "keel");
//! }
//! ```
//!
//! Every container a test starts through [`Runtime`] is removed with
//! `delete --force` when its [`Container`] guard or the [`Runtime`] itself is
//! dropped (even when the test panics), and the temporary `--root` goes with
//! the `Runtime`.

#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_testkit::{Bundle, TempDir};

/// What a runtime invocation did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// exit code; `128 + signal` when the runtime itself was killed
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    fn from_output(out: Output) -> Self {
        use std::os::unix::process::ExitStatusExt;
        let code = out
            .status
            .code()
            .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
        Self {
            code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panic (printing stdout and stderr) unless the exit code is 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert_eq!(self.code, 0, "runtime failed: {self:#?}");
        self
    }

    /// Panic unless the exit code is non-zero; returns the stderr.
    #[track_caller]
    pub fn assert_failure(&self) -> &str {
        assert_ne!(self.code, 0, "runtime unexpectedly succeeded: {self:#?}");
        &self.stderr
    }
}

/// The runtime binary under test with a private, temporary `--root`.
pub struct Runtime {
    bin: PathBuf,
    root: TempDir,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    /// `KEEL_TEST_RUNTIME` or the keel binary built by cargo.
    pub fn new() -> Self {
        let bin = std::env::var_os("KEEL_TEST_RUNTIME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_keel")));
        let root = tempfile_root();
        Self { bin, root }
    }

    /// The binary's file name: "keel", "runc", "crun"...
    pub fn name(&self) -> String {
        self.bin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Whether the runtime under test is keel (for keel-only checks).
    pub fn is_keel(&self) -> bool {
        self.name() == "keel"
    }

    /// The binary path (or name) as given.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The `--root` state directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `RUNTIME --root ROOT` ready for more arguments; stdin is null.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root.path()).stdin(Stdio::null());
        c
    }

    /// Run `RUNTIME --root ROOT ARGS...`, capturing stdout and stderr.
    ///
    /// Output goes through temporary files, not pipes: a container started
    /// by `create`/`run -d`/`exec -d` inherits the runtime's stdio and would
    /// hold a pipe open for as long as it runs.
    pub fn exec<S: AsRef<OsStr>>(&self, args: &[S]) -> Outcome {
        let mut cmd = self.command();
        cmd.args(args);
        capture(&mut cmd)
    }

    /// Foreground `run --bundle B ID` under a fresh id, output captured; the
    /// container is force-deleted afterwards whatever happened.
    pub fn run_bundle(&self, bundle: &Bundle) -> Outcome {
        let c = self.container("run");
        c.run(bundle, &[])
    }

    /// A fresh container id (`<prefix>-<pid>-<n>`) with a cleanup guard.
    pub fn container(&self, prefix: &str) -> Container<'_> {
        Container {
            rt: self,
            id: berth_testkit::unique_id(prefix),
        }
    }

    /// `list -q`: the ids the runtime knows.
    pub fn list_ids(&self) -> Vec<String> {
        self.exec(&["list", "-q"])
            .stdout
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.list_ids() {
            let _ = self.exec(&["delete", "--force", &id]);
        }
    }
}

/// Run `cmd` to completion with stdout and stderr captured through files.
pub fn capture(cmd: &mut Command) -> Outcome {
    let out = tempfile::tempfile().unwrap_or_else(|e| panic!("tempfile: {e}"));
    let err = tempfile::tempfile().unwrap_or_else(|e| panic!("tempfile: {e}"));
    let status = cmd
        .stdout(out.try_clone().unwrap_or_else(|e| panic!("dup: {e}")))
        .stderr(err.try_clone().unwrap_or_else(|e| panic!("dup: {e}")))
        .status()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        let _ = f.rewind();
        let _ = f.read_to_end(&mut v);
        v
    };
    Outcome::from_output(Output {
        status,
        stdout: read(out),
        stderr: read(err),
    })
}

/// Make a `--root` dir on /run (as runc expects a tmpfs-ish location) or /tmp.
fn tempfile_root() -> TempDir {
    let base = Path::new("/run");
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("keel-test-root-");
        b
    };
    if base.is_dir() {
        if let Ok(d) = builder.tempdir_in(base) {
            return d;
        }
    }
    builder
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temporary --root: {e}"))
}

/// One container id in one runtime; `delete --force` on drop.
pub struct Container<'a> {
    rt: &'a Runtime,
    /// the container id
    pub id: String,
}

impl Container<'_> {
    /// `run [EXTRA...] --bundle B ID` in the foreground.
    pub fn run(&self, bundle: &Bundle, extra: &[&str]) -> Outcome {
        let mut args: Vec<&OsStr> = vec![OsStr::new("run")];
        args.extend(extra.iter().map(OsStr::new));
        args.push(OsStr::new("--bundle"));
        args.push(bundle.path().as_os_str());
        args.push(OsStr::new(&self.id));
        self.rt.exec(&args)
    }

    /// `create --bundle B [EXTRA...] ID`.
    pub fn create(&self, bundle: &Bundle, extra: &[&str]) -> Outcome {
        let mut args: Vec<&OsStr> = vec![OsStr::new("create"), OsStr::new("--bundle")];
        args.push(bundle.path().as_os_str());
        args.extend(extra.iter().map(OsStr::new));
        args.push(OsStr::new(&self.id));
        self.rt.exec(&args)
    }

    /// `VERB [ARGS...] ID [TAIL...]`, e.g. `cmd("kill", &[], &["KILL"])`.
    pub fn cmd(&self, verb: &str, args: &[&str], tail: &[&str]) -> Outcome {
        let mut v: Vec<&str> = vec![verb];
        v.extend_from_slice(args);
        v.push(&self.id);
        v.extend_from_slice(tail);
        self.rt.exec(&v)
    }

    /// `exec ID ARGS...` (foreground, output captured).
    pub fn exec(&self, args: &[&str]) -> Outcome {
        self.cmd("exec", &[], args)
    }

    /// `start ID`.
    pub fn start(&self) -> Outcome {
        self.cmd("start", &[], &[])
    }

    /// `state ID` parsed; `None` when the runtime does not know the id.
    pub fn state(&self) -> Option<serde_json::Value> {
        let out = self.cmd("state", &[], &[]);
        if out.code != 0 {
            return None;
        }
        serde_json::from_str(&out.stdout).ok()
    }

    /// The "status" field of `state`, or "" when unknown.
    pub fn status(&self) -> String {
        self.state()
            .and_then(|s| s["status"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The init pid from `state` (0 when unknown).
    pub fn pid(&self) -> i32 {
        self.state().and_then(|s| s["pid"].as_i64()).unwrap_or(0) as i32
    }

    /// Poll `state` until its status is `want` or `timeout` passes.
    pub fn wait_status(&self, want: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.status() == want {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `delete --force ID` now (the guard's drop does it too).
    pub fn force_delete(&self) -> Outcome {
        self.cmd("delete", &["--force"], &[])
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.force_delete();
    }
}

/// A busybox bundle whose config is the testkit default changed by `edit`.
pub fn bundle_with(args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> Bundle {
    let mut cfg = berth_testkit::default_config(args);
    edit(&mut cfg);
    Bundle::with_config(cfg).unwrap_or_else(|e| panic!("cannot build a busybox bundle: {e}"))
}

/// A busybox bundle running `args` with the default config.
pub fn busybox(args: &[&str]) -> Bundle {
    bundle_with(args, |_| {})
}

/// Whether `pid` is still alive on the host.
pub fn pid_alive(pid: i32) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// Run `script` under `sh -c` in a default busybox container changed by `edit`.
pub fn run_script(script: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Outcome {
    let bundle = bundle_with(&["sh", "-c", script], edit);
    Runtime::new().run_bundle(&bundle)
}

/// Append a mount to the config.
pub fn add_mount(cfg: &mut serde_json::Value, mount: serde_json::Value) {
    cfg["mounts"]
        .as_array_mut()
        .expect("mounts array")
        .push(mount);
}

/// Assert that the (deleted) container's init `pid` is gone or a zombie.
#[track_caller]
pub fn assert_init_reaped(pid: i32) {
    assert!(
        !pid_alive(pid)
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z")
    );
}

/// Whether /sys/fs/cgroup is a pure cgroup v2 hierarchy.
pub fn pure_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The host directory of `pid`'s cgroup for `controller` (v1), or its v2
/// directory on a pure v2 host.
pub fn cgroup_dir(pid: i32, controller: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let v2 = pure_v2();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next(), parts.next(), parts.next());
        let (Some(ctrls), Some(path)) = (ctrls, path) else {
            continue;
        };
        let path = path.trim_start_matches('/');
        if v2 && ctrls.is_empty() {
            return Path::new("/sys/fs/cgroup").join(path);
        }
        if !v2 && ctrls.split(',').any(|c| c == controller) {
            return Path::new("/sys/fs/cgroup").join(ctrls).join(path);
        }
    }
    panic!("pid {pid} has no {controller} cgroup:\n{text}");
}

/// The trimmed contents of `dir/file`; panics naming the file.
pub fn read_trimmed(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
        .trim()
        .to_owned()
}

/// `rt` keeps no state for `id` (no listed id, no state dir), and no cgroup
/// directory named `id` is left under any of `cgroup_roots`.
pub fn assert_nothing_left(rt: &Runtime, id: &str, cgroup_roots: &[&str]) {
    assert!(rt.list_ids().is_empty(), "state left: {:?}", rt.list_ids());
    assert!(!rt.root().join(id).exists(), "state dir left");
    for base in cgroup_roots {
        let p = Path::new(base).join(id);
        assert!(!p.exists(), "cgroup left: {}", p.display());
    }
}
