//! Dangling (untagged, `<none>:<none>`) images: kept when their last name
//! moves away, created by `import` without a name and by `load` of untagged
//! entries, found by id, removed by `rmi <id>` and `image prune`.

#![allow(clippy::unwrap_used)]

mod common;

use berth_image::store::{ImageRecord, Removed};
use berth_image::{archive, ImageStore, Reference};
use berth_testkit::image::Layer;
use common::open_store;

/// A one-file rootfs tarball whose file holds `content` (so each image has
/// a layer of its own).
fn rootfs(content: &[u8]) -> Vec<u8> {
    Layer::new().file("marker", content, 0o644).tar().unwrap()
}

fn import(store: &ImageStore, content: &[u8], name: Option<&str>) -> ImageRecord {
    let name = name.map(|n| Reference::parse(n).unwrap());
    archive::import(store, &mut &rootfs(content)[..], name.as_ref(), &[]).unwrap()
}

fn dangling_ids(store: &ImageStore) -> Vec<String> {
    let mut ids: Vec<String> = store
        .list()
        .unwrap()
        .into_iter()
        .filter(ImageRecord::is_dangling)
        .map(|r| r.id.to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn moved_names_leave_dangling_images_that_prune_removes() {
    if !berth_testkit::require_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let store = open_store(root.path());
    let one = import(&store, b"one", Some("app:1"));
    assert!(dangling_ids(&store).is_empty());

    // the tag moves to a new image: the old one stays, without a name
    let two = import(&store, b"two", Some("app:1"));
    assert_eq!(store.resolve("app:1").unwrap().id, two.id);
    assert_eq!(dangling_ids(&store), [one.id.to_string()]);
    let old = store.resolve(&one.id.encoded()[..12]).unwrap();
    assert!(old.is_dangling());
    assert_eq!(old.id, one.id);
    assert_eq!(store.manifest(&old).unwrap().layers().len(), 1);

    // GC (run by an unrelated rmi) keeps the dangling image's content
    let other = import(&store, b"other", Some("other:1"));
    store.remove("other:1", false).unwrap();
    assert!(store.resolve(other.id.as_str()).is_err());
    let dirs = store.layer_dirs(&old).unwrap();
    assert_eq!(std::fs::read(dirs[0].join("marker")).unwrap(), b"one");

    // `tag` onto the existing name: image one is named again, two dangles
    store
        .tag(one.id.as_str(), &Reference::parse("app:1").unwrap())
        .unwrap();
    assert!(!store.resolve(one.id.as_str()).unwrap().is_dangling());
    assert_eq!(dangling_ids(&store), [two.id.to_string()]);

    // import without a name: a third dangling image
    let three = import(&store, b"three", None);
    assert!(three.is_dangling());
    let mut want = vec![two.id.to_string(), three.id.to_string()];
    want.sort();
    assert_eq!(dangling_ids(&store), want);

    // `rmi <id>` removes a dangling image
    assert_eq!(
        store.remove(three.id.as_str(), false).unwrap(),
        [Removed::Deleted(three.id.clone())]
    );
    assert_eq!(dangling_ids(&store), [two.id.to_string()]);

    // prune without -a: dangling images only, and their content
    let two_dirs = store
        .layer_dirs(&store.resolve(two.id.as_str()).unwrap())
        .unwrap();
    let pruned = store.prune(false).unwrap();
    assert_eq!(pruned, [Removed::Deleted(two.id.clone())]);
    assert!(dangling_ids(&store).is_empty());
    assert!(!two_dirs[0].exists());
    assert!(!store.content().contains(&two.id));
    assert_eq!(store.resolve("app:1").unwrap().id, one.id);
    assert!(store.prune(false).unwrap().is_empty());

    // prune -a: everything
    let pruned = store.prune(true).unwrap();
    assert!(pruned.contains(&Removed::Untagged("app:1".into())));
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn untagged_archive_entries_load_as_dangling_images() {
    if !berth_testkit::require_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let store = open_store(&root.path().join("a"));
    let named = import(&store, b"named", Some("app:1"));
    let untagged = import(&store, b"untagged", None);
    // saved by id: the archive entry has no name
    let mut tar = Vec::new();
    archive::save(&store, &[untagged.id.as_str(), "app:1"], &mut tar).unwrap();

    let other = open_store(&root.path().join("b"));
    let loaded = archive::load(&other, &mut &tar[..]).unwrap();
    assert!(loaded.contains(&untagged.id.to_string()), "{loaded:?}");
    assert!(loaded.contains(&"app:1".to_owned()), "{loaded:?}");
    let rec = other.resolve(untagged.id.as_str()).unwrap();
    assert!(rec.is_dangling());
    assert_eq!(other.resolve("app:1").unwrap().id, named.id);
    assert_eq!(dangling_ids(&other), [untagged.id.to_string()]);

    // loading it again changes nothing; loading an image that has a name
    // untagged does not make it dangling
    archive::load(&other, &mut &tar[..]).unwrap();
    assert_eq!(dangling_ids(&other), [untagged.id.to_string()]);
    let mut by_id = Vec::new();
    archive::save(&other, &[named.id.as_str()], &mut by_id).unwrap();
    assert_eq!(
        archive::load(&other, &mut &by_id[..]).unwrap(),
        [named.id.to_string()]
    );
    assert_eq!(dangling_ids(&other), [untagged.id.to_string()]);
}
