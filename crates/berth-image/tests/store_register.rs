//! `register` (the path of load and import): blobs already ingested, layers
//! unpacked on registration, the record written last; and what it refuses.

#![allow(clippy::unwrap_used)]

mod common;

use berth_image::store::Platform;
use berth_image::{Digest, Reference};
use berth_testkit::image::{Layer, OciLayout};
use common::open_store;

fn blob(layout: &std::path::Path, d: &str) -> Vec<u8> {
    std::fs::read(layout.join("blobs/sha256").join(&d[7..])).unwrap()
}

#[test]
fn register_unpacks_ingested_blobs_and_records_last() {
    let dir = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(dir.path()).unwrap();
    let arch = Platform::host().architecture;
    let m = layout
        .image(
            &[
                Layer::new().file("a", b"1", 0o644),
                Layer::new().file("b", b"2", 0o644),
            ],
            &["true"],
            "linux",
            &arch,
            None,
        )
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&blob(dir.path(), &m.digest)).unwrap();
    let target: oci_spec::image::Descriptor = serde_json::from_value(m.json.clone()).unwrap();

    let root = tempfile::tempdir().unwrap();
    let store = open_store(root.path());
    let name = Reference::parse("imported:1").unwrap();
    // the manifest alone: refused (its config and layers are missing), nothing recorded
    let md: Digest = m.digest.parse().unwrap();
    store
        .ingest_blob(&md, &mut blob(dir.path(), &m.digest).as_slice())
        .unwrap();
    assert!(store.register(&name, target.clone()).is_err());
    assert!(store.list().unwrap().is_empty());

    let mut digests = vec![manifest["config"]["digest"].as_str().unwrap().to_owned()];
    for l in manifest["layers"].as_array().unwrap() {
        digests.push(l["digest"].as_str().unwrap().to_owned());
    }
    for d in &digests {
        let digest: Digest = d.parse().unwrap();
        store
            .ingest_blob(&digest, &mut blob(dir.path(), d).as_slice())
            .unwrap();
    }
    // a blob that does not match its digest is refused
    let wrong: Digest = digests[1].parse().unwrap();
    assert!(store
        .ingest_blob(&Digest::sha256_of(b"x"), &mut &b"y"[..])
        .is_err());
    assert!(store.content().contains(&wrong));

    let rec = store.register(&name, target).unwrap();
    assert_eq!(rec.name, "docker.io/library/imported:1");
    let dirs = store.layer_dirs(&rec).unwrap();
    assert_eq!(std::fs::read(dirs[0].join("a")).unwrap(), b"1");
    assert_eq!(std::fs::read(dirs[1].join("b")).unwrap(), b"2");
    assert_eq!(store.resolve("imported:1").unwrap().id, rec.id);
    assert_eq!(store.config(&rec).unwrap().rootfs().diff_ids().len(), 2);

    // a snapshot that went missing is unpacked again from its blob
    std::fs::remove_dir_all(&dirs[1]).unwrap();
    let again = store.layer_dirs(&rec).unwrap();
    assert_eq!(std::fs::read(again[1].join("b")).unwrap(), b"2");
}
