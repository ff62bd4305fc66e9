//! Hostile archives for `load`: links out of the archive must not make us
//! read host files, and nothing is written outside the scratch dir.

#![allow(clippy::unwrap_used)] // a panic is how a test reports failure

mod common;

use berth_image::archive::{self, Error};
use berth_testkit::tarfix::RawTar;
use common::open_store;

#[test]
fn manifest_symlinked_to_a_host_file_is_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret.json");
    std::fs::write(
        &secret,
        br#"[{"Config":"x","RepoTags":["pwned:1"],"Layers":[]}]"#,
    )
    .unwrap();
    let tar = RawTar::new()
        .symlink("manifest.json", secret.as_os_str().as_encoded_bytes())
        .finish();
    let store = open_store(&tmp.path().join("root"));
    let err = archive::load(&store, &mut &tar[..]).unwrap_err();
    assert!(
        matches!(&err, Error::Missing(p) if p == "manifest.json"),
        "{err}"
    );
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn layer_path_escaping_the_archive_is_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest =
        br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["../../../../etc/hostname"]}]"#;
    let tar = RawTar::new()
        .file("c.json", br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#)
        .file("manifest.json", manifest)
        .finish();
    let store = open_store(&tmp.path().join("root"));
    let err = archive::load(&store, &mut &tar[..]).unwrap_err();
    assert!(
        matches!(&err, Error::Missing(p) if p.ends_with("etc/hostname")),
        "{err}"
    );
}

#[test]
fn archive_entries_escaping_the_scratch_dir_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = RawTar::new().file("../../escaped", "x").finish();
    let store = open_store(&tmp.path().join("root"));
    let err = archive::load(&store, &mut &tar[..]).unwrap_err();
    assert!(matches!(err, Error::Archive(_)), "{err}");
    assert!(!tmp.path().join("escaped").exists());
    assert!(!tmp.path().join("root/escaped").exists());
    // The scratch dir is gone after the failed load.
    let scratch = std::fs::read_dir(tmp.path().join("root/tmp"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(scratch, 0);
}
