//! Privileged: two unpacked layers mounted as overlayfs lower dirs; the
//! upper layer's whiteout hides a file and its opaque directory hides the
//! lower directory's contents in the merged view.

#![allow(clippy::unwrap_used)] // a panic is how a test reports failure

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_image::unpack::{unpack_layer, Compression, Options};
use berth_testkit::tarfix::RawTar;

/// Unmounts (lazily) on drop, even when the test fails.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

fn unpack(tar: Vec<u8>, dir: &Path) {
    fs::create_dir(dir).unwrap();
    let opts = Options {
        root: true,
        ..Options::default()
    };
    unpack_layer(&tar[..], Compression::None, dir, &opts).unwrap();
}

#[test]
fn merged_view_honours_whiteouts_and_opaque_dirs() {
    if !berth_testkit::require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper, merged) = (
        tmp.path().join("l0"),
        tmp.path().join("l1"),
        tmp.path().join("m"),
    );
    unpack(
        RawTar::new()
            .dir("etc")
            .file("etc/keep", "k")
            .file("etc/gone", "g")
            .dir("var")
            .file("var/old", "o")
            .finish(),
        &lower,
    );
    unpack(
        RawTar::new()
            .dir("etc")
            .file("etc/.wh.gone", "")
            .dir("var")
            .file("var/.wh..wh..opq", "")
            .file("var/new", "n")
            .finish(),
        &upper,
    );
    fs::create_dir(&merged).unwrap();
    let opts = format!("lowerdir={}:{}", upper.display(), lower.display());
    let status = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&merged)
        .status()
        .unwrap();
    assert!(status.success(), "mount overlay failed");
    let _guard = Mounted(merged.clone());
    assert_eq!(fs::read(merged.join("etc/keep")).unwrap(), b"k");
    assert!(
        !merged.join("etc/gone").exists(),
        "whiteout did not hide etc/gone"
    );
    assert!(
        !merged.join("var/old").exists(),
        "opaque dir did not hide var/old"
    );
    assert_eq!(fs::read(merged.join("var/new")).unwrap(), b"n");
    let names: Vec<_> = fs::read_dir(merged.join("etc"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["keep"]);
}
