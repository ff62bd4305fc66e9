//! Helpers for the CLI tests: run the real `berth` binary against a private
//! data root, build test images, and clean up bundles and runc containers
//! even when a test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use berth_testkit::image::{Desc, Layer, OciLayout};
use serde_json::{json, Value};

/// A private berth installation: data root, credentials file, no daemon.json.
pub struct Berth {
    pub root: tempfile::TempDir,
}

impl Berth {
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("berth-cli-")
            .tempdir()
            .expect("tempdir");
        Self { root }
    }

    pub fn data_root(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// `berth --data-root … ARGS`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("--data-root")
            .arg(self.data_root())
            .arg("--config")
            .arg(self.root.path().join("daemon.json"))
            .args(args)
            .env("DOCKER_CONFIG", self.root.path().join("docker"))
            .env_remove("BERTH_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// Run and return the output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("running berth")
    }

    /// Run, require success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run, require failure, return stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "berth {args:?} should have failed:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// Bundles made by a test: unbundled (unmounted, removed) on drop.
#[derive(Default)]
pub struct Bundles {
    dirs: Vec<PathBuf>,
}

impl Bundles {
    pub fn track(&mut self, dir: &Path) {
        self.dirs.push(dir.to_owned());
    }
}

impl Drop for Bundles {
    fn drop(&mut self) {
        for dir in &self.dirs {
            let _ = Command::new(env!("CARGO_BIN_EXE_berth"))
                .arg("unbundle")
                .arg(dir)
                .stderr(Stdio::null())
                .status();
            let rootfs = dir.join("rootfs");
            // Lazy unmount (a runc container may still be dying), then remove.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&rootfs)
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// runc containers started by a test: deleted (forcibly) on drop.
pub struct Runc {
    pub root: tempfile::TempDir,
    ids: Vec<String>,
}

impl Runc {
    pub fn new() -> Self {
        Self {
            root: tempfile::Builder::new()
                .prefix("berth-runc-")
                .tempdir()
                .expect("tempdir"),
            ids: Vec::new(),
        }
    }

    /// `runc run -b BUNDLE ID` in the foreground; returns the output.
    pub fn run(&mut self, bundle: &Path) -> Output {
        let id = berth_testkit::unique_id("berth-cli");
        self.ids.push(id.clone());
        Command::new("runc")
            .arg("--root")
            .arg(self.root.path())
            .args(["run", "-b"])
            .arg(bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .output()
            .expect("running runc")
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(self.root.path())
                .args(["delete", "-f", id])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Write an image with `config` (the image config's `config` object) over
/// `layers` into `layout`, tag it `tag`.
pub fn image(layout: &mut OciLayout, layers: &[Layer], config: Value, tag: &str) -> Desc {
    let config = json!({
        "architecture": host_arch(),
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": config,
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "berth tests"}],
    });
    let desc = layout.image_with_config(layers, config).expect("image");
    layout.tag(tag, &desc).expect("tag");
    desc
}

pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// keel beside `berth` with a private state root (built when missing; the
/// test fails when it cannot be, rather than skipping keel).
pub fn keel() -> berth_testkit::cli::Keel {
    berth_testkit::cli::Keel::beside(Path::new(env!("CARGO_BIN_EXE_berth")))
}

/// A path as the `&str` argument the CLI takes.
pub fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// The manifest digest on the `TAG: digest: sha256:… size: …` line of
/// `berth push` output.
pub fn pushed_digest(out: &str, tag: &str) -> String {
    let prefix = format!("{tag}: digest: ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest line in {out}"))
        .to_owned()
}
