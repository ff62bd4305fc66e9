//! Dangling (`<none>:<none>`) images through the `berth` binary: a re-pull
//! of a moved tag keeps the old image, `import` without a name and `load`
//! of an untagged archive make one, `images`/`inspect`/`rmi`/`image prune`
//! show and remove them as Docker does.

mod common;

use std::path::Path;

use berth_testkit::image::{Layer, OciLayout};
use berth_testkit::registry::Registry;
use common::{image, Berth};
use serde_json::{json, Value};

/// Push a one-layer image whose file says `what` to `reference`.
fn push_version(dir: &Path, what: &str, reference: &str) {
    let mut layout = OciLayout::create(dir).expect("layout");
    let layer = Layer::new().file("version", what.as_bytes(), 0o644);
    image(&mut layout, &[layer], json!({"Cmd": ["/version"]}), "1");
    berth_testkit::image::push(dir, "1", reference).expect("skopeo push");
}

fn image_id(berth: &Berth, name: &str) -> String {
    let doc: Value =
        serde_json::from_str(&berth.ok(&["image", "inspect", name])).expect("inspect json");
    doc[0]["Id"].as_str().expect("Id").to_owned()
}

fn short(id: &str) -> &str {
    &id["sha256:".len().."sha256:".len() + 12]
}

/// The `berth images` rows as columns (REPOSITORY, TAG, IMAGE ID, …).
fn rows(berth: &Berth, args: &[&str]) -> Vec<Vec<String>> {
    let mut all = vec!["images"];
    all.extend_from_slice(args);
    berth
        .ok(&all)
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn is_dangling_row(rows: &[Vec<String>], id: &str) -> bool {
    rows.iter()
        .any(|r| r[0] == "<none>" && r[1] == "<none>" && r[2] == short(id))
}

#[test]
fn dangling_images_are_kept_listed_and_pruned() {
    if !berth_testkit::require_root() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let registry = Registry::start();
    let reference = format!("{}/app:1", registry.addr());
    let berth = Berth::new();

    // the tag moves on the registry: the re-pull keeps the old image
    push_version(&work.path().join("v1"), "one", &reference);
    berth.ok(&["pull", "-q", &reference]);
    let old = image_id(&berth, &reference);
    push_version(&work.path().join("v2"), "two", &reference);
    berth.ok(&["pull", "-q", &reference]);
    let new = image_id(&berth, &reference);
    assert_ne!(old, new);
    let listed = rows(&berth, &[]);
    assert!(is_dangling_row(&listed, &old), "{listed:?}");
    assert!(is_dangling_row(&rows(&berth, &["-a"]), &old));
    let quiet = berth.ok(&["images", "-q"]);
    assert!(quiet.lines().any(|l| l == short(&old)), "{quiet}");
    assert!(quiet.lines().any(|l| l == short(&new)), "{quiet}");
    let doc: Value =
        serde_json::from_str(&berth.ok(&["image", "inspect", short(&old)])).expect("inspect");
    assert_eq!(doc[0]["Id"], json!(old));
    assert_eq!(doc[0]["RepoTags"], json!([]));

    // import without a name prints the id of a new dangling image
    let tarball = work.path().join("rootfs.tar");
    let rootfs = Layer::new().file("imported", b"yes", 0o644);
    std::fs::write(&tarball, rootfs.tar().expect("tar")).expect("write tar");
    let imported = berth.ok(&["import", tarball.to_str().expect("utf-8")]);
    let imported = imported.trim().to_owned();
    assert!(imported.starts_with("sha256:"), "{imported}");
    assert!(is_dangling_row(&rows(&berth, &[]), &imported));

    // saved by id, removed by id, loaded back: `Loaded image ID:`
    let archive = work.path().join("untagged.tar");
    let archive = archive.to_str().expect("utf-8");
    berth.ok(&["save", "-o", archive, &imported]);
    let removed = berth.ok(&["rmi", short(&imported)]);
    assert_eq!(removed.trim(), format!("Deleted: {imported}"));
    assert!(!berth.ok(&["images", "-q"]).contains(short(&imported)));
    let loaded = berth.ok(&["load", "-i", archive]);
    assert_eq!(loaded.trim(), format!("Loaded image ID: {imported}"));
    assert!(is_dangling_row(&rows(&berth, &[]), &imported));

    // prune without -a: the dangling images only
    let pruned = berth.ok(&["image", "prune", "-f"]);
    assert!(pruned.starts_with("Deleted Images:\n"), "{pruned}");
    assert!(pruned.contains(&format!("Deleted: {old}")), "{pruned}");
    assert!(pruned.contains(&format!("Deleted: {imported}")), "{pruned}");
    assert!(!pruned.contains("Untagged"), "{pruned}");
    assert!(pruned.contains("Total reclaimed space:"), "{pruned}");
    let left = berth.ok(&["images", "-q"]);
    assert_eq!(left.trim(), short(&new), "{left}");
    let again = berth.ok(&["image", "prune", "-f"]);
    assert!(!again.contains("Deleted"), "{again}");

    // prune -a: the rest
    let all = berth.ok(&["image", "prune", "-a", "-f"]);
    assert!(all.contains(&format!("Deleted: {new}")), "{all}");
    assert_eq!(berth.ok(&["images", "-q"]).trim(), "");
}
