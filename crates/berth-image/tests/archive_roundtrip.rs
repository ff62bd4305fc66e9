//! save / load / import against a real store and skopeo: archives skopeo
//! writes load; what we save loads back byte-identically and skopeo reads it.

#![allow(clippy::unwrap_used)] // a panic is how a test reports failure

mod common;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_image::archive::{self, Error};
use berth_image::store::ImageStore;
use berth_image::Reference;
use berth_testkit::image::{Layer, OciLayout};
use berth_testkit::peers::check;
use common::open_store;
use serde_json::Value;

/// A two-layer busybox image (the top layer deletes and replaces files) in
/// an OCI layout under `dir`, tagged `latest`.
fn layout(dir: &Path) -> PathBuf {
    let path = dir.join("layout");
    let mut l = OciLayout::create(&path).unwrap();
    let top = Layer::new()
        .file("etc/motd", b"hello\n", 0o644)
        .whiteout("etc/group")
        .opaque("home");
    let host = berth_image::store::Platform::host();
    let m = l
        .image(
            &[Layer::busybox().unwrap(), top],
            &["/bin/sh"],
            "linux",
            &host.architecture,
            None,
        )
        .unwrap();
    l.tag("latest", &m).unwrap();
    path
}

fn skopeo(args: &[&str]) -> String {
    check(Command::new("skopeo").args(args))
}

/// `skopeo copy` the layout's `latest` image to the transport `dest`.
fn copy_layout(src: &Path, dest: &str) {
    skopeo(&[
        "copy",
        "--quiet",
        &format!("oci:{}:latest", src.display()),
        dest,
    ]);
}

fn load_file(store: &ImageStore, path: &Path) -> Result<Vec<String>, Error> {
    archive::load(store, &mut File::open(path).unwrap())
}

/// The loaded image is usable: its layers are unpacked, whiteout applied.
fn check_image(store: &ImageStore, name: &str) {
    let rec = store.resolve(name).unwrap();
    let dirs = store.layer_dirs(&rec).unwrap();
    assert_eq!(dirs.len(), 2);
    assert!(dirs[0].join("bin/busybox").is_file());
    assert_eq!(fs::read(dirs[1].join("etc/motd")).unwrap(), b"hello\n");
}

#[test]
fn loads_oci_archive_from_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let src = layout(tmp.path());
    let tar = tmp.path().join("oci.tar");
    copy_layout(
        &src,
        &format!("oci-archive:{}:example.com/test/oci:1", tar.display()),
    );
    let store = open_store(&tmp.path().join("root"));
    assert_eq!(load_file(&store, &tar).unwrap(), ["example.com/test/oci:1"]);
    check_image(&store, "example.com/test/oci:1");
}

#[test]
fn loads_docker_archive_from_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let src = layout(tmp.path());
    let tar = tmp.path().join("docker.tar");
    copy_layout(
        &src,
        &format!("docker-archive:{}:example.com/test/docker:2", tar.display()),
    );
    let store = open_store(&tmp.path().join("root"));
    assert_eq!(
        load_file(&store, &tar).unwrap(),
        ["example.com/test/docker:2"]
    );
    check_image(&store, "example.com/test/docker:2");
}

#[test]
fn oci_layout_with_only_a_tag_loads_as_a_dangling_image() {
    let tmp = tempfile::tempdir().unwrap();
    let src = layout(tmp.path());
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", &src).unwrap();
    let bytes = b.into_inner().unwrap();
    let store = open_store(&tmp.path().join("root"));
    let loaded = archive::load(&store, &mut &bytes[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert!(loaded[0].starts_with("sha256:"), "{loaded:?}");
    let rec = store.resolve(&loaded[0]).unwrap();
    assert!(rec.is_dangling());
    let err = archive::load(&store, &mut &b"garbage that is not a tar"[..]).unwrap_err();
    assert!(matches!(err, Error::Archive(_)), "{err}");
}

#[test]
fn save_load_save_is_byte_identical_and_skopeo_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src = layout(tmp.path());
    let first = open_store(&tmp.path().join("root1"));
    let oci = tmp.path().join("oci.tar");
    copy_layout(
        &src,
        &format!("oci-archive:{}:example.com/test/rt:1", oci.display()),
    );
    load_file(&first, &oci).unwrap();
    first
        .tag(
            "example.com/test/rt:1",
            &Reference::parse("rt-alias:2").unwrap(),
        )
        .unwrap();

    let mut saved = Vec::new();
    archive::save(&first, &["example.com/test/rt:1", "rt-alias:2"], &mut saved).unwrap();
    let second = open_store(&tmp.path().join("root2"));
    let mut names = archive::load(&second, &mut &saved[..]).unwrap();
    names.sort();
    assert_eq!(names, ["example.com/test/rt:1", "rt-alias:2"]);
    check_image(&second, "rt-alias:2");
    let mut again = Vec::new();
    archive::save(
        &second,
        &["example.com/test/rt:1", "rt-alias:2"],
        &mut again,
    )
    .unwrap();
    assert!(saved == again, "save → load → save changed the bytes");

    // Docker's manifest.json view and the OCI view of the same archive.
    let path = tmp.path().join("saved.tar");
    File::create(&path).unwrap().write_all(&saved).unwrap();
    let inspect: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        &format!("docker-archive:{}", path.display()),
    ]))
    .unwrap();
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    let out = tmp.path().join("copied");
    skopeo(&[
        "copy",
        "--quiet",
        &format!("docker-archive:{}:rt-alias:2", path.display()),
        &format!("oci:{}:x", out.display()),
    ]);
    // ref.name holds the tag, as the OCI spec and Docker 25 write it.
    skopeo(&["inspect", &format!("oci-archive:{}:1", path.display())]);
}

#[test]
fn loads_old_docker_layout_with_plain_layer_tars() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = Layer::new().file("hello", b"world", 0o644).tar().unwrap();
    let diff_id = berth_testkit::image::sha256(&layer);
    let config = serde_json::json!({
        "architecture": berth_image::store::Platform::host().architecture, "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", &berth_testkit::image::sha256(&config)[7..]);
    let manifest = serde_json::json!([{"Config": config_name, "RepoTags": ["old:1"], "Layers": ["abc123/layer.tar"]}]);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, data).unwrap();
    };
    add("abc123/layer.tar", &layer);
    add(&config_name, &config);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    let bytes = b.into_inner().unwrap();
    let store = open_store(&tmp.path().join("root"));
    assert_eq!(archive::load(&store, &mut &bytes[..]).unwrap(), ["old:1"]);
    let rec = store.resolve("old:1").unwrap();
    let dirs = store.layer_dirs(&rec).unwrap();
    assert_eq!(fs::read(dirs[0].join("hello")).unwrap(), b"world");
}

#[test]
fn import_makes_a_one_layer_image() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = Layer::busybox().unwrap().tar().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let store = open_store(&tmp.path().join("root"));
    let name = Reference::parse("example.com/imported:1").unwrap();
    let changes = ["CMD [\"/bin/sh\"]".to_owned(), "ENV A=1".to_owned()];
    let rec = archive::import(&store, &mut &gz[..], Some(&name), &changes).unwrap();
    let config = store.config(&rec).unwrap();
    assert_eq!(
        config.rootfs().diff_ids(),
        &[berth_testkit::image::sha256(&tar)]
    );
    let c = config.config().as_ref().unwrap();
    assert_eq!(c.cmd().as_deref(), Some(&["/bin/sh".to_owned()][..]));
    assert_eq!(c.env().as_deref(), Some(&["A=1".to_owned()][..]));
    assert_eq!(config.history().as_ref().map(Vec::len), Some(1));
    let dirs = store.layer_dirs(&rec).unwrap();
    assert!(dirs[0].join("bin/busybox").is_file());
    // without a name: a dangling image, found by its id
    let untagged = archive::import(&store, &mut &gz[..], None, &[]).unwrap();
    assert!(untagged.is_dangling());
    assert_eq!(store.resolve(untagged.id.as_str()).unwrap().id, untagged.id);
}

#[test]
fn loads_the_host_platform_of_a_nested_index() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("layout");
    let mut l = OciLayout::create(&path).unwrap();
    let host = berth_image::store::Platform::host();
    let other = if host.architecture == "s390x" {
        "riscv64"
    } else {
        "s390x"
    };
    let mine = l
        .image(
            &[Layer::new().file("which", b"host", 0o644)],
            &["/which"],
            "linux",
            &host.architecture,
            host.variant.as_deref(),
        )
        .unwrap();
    let theirs = l
        .image(
            &[Layer::new().file("which", b"other", 0o644)],
            &["/which"],
            "linux",
            other,
            None,
        )
        .unwrap();
    let index = l.index(&[theirs, mine]).unwrap();
    // A ref.name that is a full reference names the image by itself.
    l.tag("example.com/multi:1", &index).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", &path).unwrap();
    let bytes = b.into_inner().unwrap();
    let store = open_store(&tmp.path().join("root"));
    assert_eq!(
        archive::load(&store, &mut &bytes[..]).unwrap(),
        ["example.com/multi:1"]
    );
    let rec = store.resolve("example.com/multi:1").unwrap();
    let dirs = store.layer_dirs(&rec).unwrap();
    assert_eq!(fs::read(dirs[0].join("which")).unwrap(), b"host");
}

#[test]
fn oci_layout_directory_export_and_load() {
    let tmp = tempfile::tempdir().unwrap();
    let src = layout(tmp.path());
    let first = open_store(&tmp.path().join("root1"));
    let oci = tmp.path().join("oci.tar");
    copy_layout(
        &src,
        &format!("oci-archive:{}:example.com/test/dir:1", oci.display()),
    );
    load_file(&first, &oci).unwrap();
    let out = tmp.path().join("exported");
    archive::save_oci_dir(&first, &["example.com/test/dir:1"], &out).unwrap();
    let inspect: Value =
        serde_json::from_str(&skopeo(&["inspect", &format!("oci:{}:1", out.display())])).unwrap();
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    let second = open_store(&tmp.path().join("root2"));
    assert_eq!(
        archive::load_dir(&second, &out).unwrap(),
        ["example.com/test/dir:1"]
    );
    check_image(&second, "example.com/test/dir:1");
}
