//! Running the workspace's own binaries from another crate's tests: find (or
//! build) `keel` next to the binary under test, and run containers with it
//! under a private state root that is cleaned up on drop.
//!
//! ```no_run
//! let keel = berth_testkit::cli::Keel::beside(std::path::Path::new("target/debug/berth"));
//! // let out = keel.run(bundle_dir);
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The workspace root (this crate lives in `<root>/crates/berth-testkit`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `target/<profile>/keel` beside `sibling` (a binary of the same build, e.g.
/// `env!("CARGO_BIN_EXE_berth")`). When it is missing it is built with
/// `cargo build -p keel` into the same target directory and profile; when
/// that fails the test fails with the reason. Never a silent skip.
pub fn keel_binary(sibling: &Path) -> PathBuf {
    let Some(profile_dir) = sibling.parent() else {
        panic!("{} has no parent directory", sibling.display());
    };
    let keel = profile_dir.join("keel");
    if keel.is_file() {
        return keel;
    }
    let Some(target_dir) = profile_dir.parent() else {
        panic!("{} has no target directory", profile_dir.display());
    };
    let profile = profile_dir
        .file_name()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = Command::new(&cargo);
    build
        .current_dir(workspace_root())
        .args(["build", "-p", "keel", "--bin", "keel", "--target-dir"])
        .arg(target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    eprintln!("{} is missing: building it ({build:?})", keel.display());
    let out = build.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("keel is not built and `{cargo} build -p keel` cannot start: {e}")
    });
    assert!(
        out.status.success() && keel.is_file(),
        "keel is not built at {} and `cargo build -p keel` failed ({}): {}\n\
         build it first: cargo build -p keel",
        keel.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    keel
}

/// The stdout of a finished command, panicking with its status, stdout and
/// stderr when it failed (`what` names it in the message).
pub fn assert_ran(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// keel with a private `--root`; every container a test started through it
/// is force-deleted on drop.
pub struct Keel {
    bin: PathBuf,
    root: tempfile::TempDir,
    ids: Vec<String>,
}

impl Keel {
    /// The keel built beside `sibling` (see [`keel_binary`]).
    pub fn beside(sibling: &Path) -> Keel {
        let root = tempfile::Builder::new()
            .prefix("berth-keel-")
            .tempdir()
            .unwrap_or_else(|e| panic!("keel state dir: {e}"));
        Keel {
            bin: keel_binary(sibling),
            root,
            ids: Vec::new(),
        }
    }

    /// `keel --root STATE ARGS…`.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root.path()).stdin(Stdio::null());
        c
    }

    /// A fresh container id, remembered for deletion on drop.
    pub fn new_id(&mut self) -> String {
        let id = crate::unique_id("berth-keel");
        self.ids.push(id.clone());
        id
    }

    /// `keel run --keep -b BUNDLE ID` in the foreground; the container stays
    /// (stopped) until `keel delete`.
    pub fn run_keep(&mut self, bundle: &Path, id: &str) -> Output {
        self.cmd()
            .args(["run", "--keep", "-b"])
            .arg(bundle)
            .arg(id)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.bin.display()))
    }

    /// `keel run -b BUNDLE ID` (keel deletes the container when it exits).
    pub fn run(&mut self, bundle: &Path) -> Output {
        let id = self.new_id();
        self.cmd()
            .args(["run", "-b"])
            .arg(bundle)
            .arg(&id)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.bin.display()))
    }
}

impl Drop for Keel {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self
                .cmd()
                .args(["delete", "-f", id])
                .stderr(Stdio::null())
                .status();
        }
    }
}
