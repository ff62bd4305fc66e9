//! `create_bundle` / `remove_bundle` on a real overlay mount: layers seen
//! top-down with whiteouts and opaque directories, users resolved through
//! the top layer's /etc/passwd, writes kept out of the shared layers, and
//! nothing left mounted or on disk after removal or a failed creation.

mod common;

use std::path::{Path, PathBuf};

use berth_image::bundle::{create_bundle, live_bundles, remove_bundle, BundleOptions};
use berth_image::store::{NoProgress, Platform};
use berth_image::Reference;
use berth_testkit::image::{Layer, OciLayout};
use berth_testkit::registry::Registry;
use serde_json::{json, Value};

/// Unmounts and deletes bundle directories even when the test fails.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for dir in self.0.iter().filter(|d| d.exists()) {
            if remove_bundle(dir).is_err() {
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(dir.join("rootfs"))
                    .status();
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// busybox, then a layer that deletes /etc/hostname, makes /opt opaque,
/// and replaces /etc/passwd and /etc/group.
fn push_image(registry: &Registry, dir: &Path) -> String {
    let mut layout = OciLayout::create(dir).expect("layout");
    let base = Layer::busybox()
        .expect("busybox")
        .dir("opt", 0o755)
        .file("opt/old", b"old\n", 0o644);
    let top = Layer::new()
        .whiteout("etc/hostname")
        .opaque("opt")
        .file("opt/new", b"new\n", 0o644)
        .file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:4242:4343::/srv/app:/bin/sh\n",
            0o644,
        )
        .file(
            "etc/group",
            b"root:x:0:\napp:x:4343:\nextra:x:77:app\n",
            0o644,
        );
    let config = json!({
        "architecture": Platform::host().architecture, "os": "linux",
        "config": {"Cmd": ["sh"], "User": "app", "Env": ["A=1"], "Volumes": {"/data": {}}},
    });
    let desc = layout
        .image_with_config(&[base, top], config)
        .expect("image");
    layout.tag("1", &desc).expect("tag");
    let reference = format!("{}/bundle-test:1", registry.addr());
    berth_testkit::image::push(dir, "1", &reference).expect("push");
    reference
}

fn is_mounted(path: &Path) -> bool {
    let wanted = path.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(wanted.as_str()))
}

#[test]
fn bundle_rootfs_is_the_merged_image_with_a_private_upper() {
    if !berth_testkit::require_root() {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("tempdir");
    let reference = push_image(&registry, &work.path().join("layout"));
    let store = common::open_store(&work.path().join("data"));
    let platform = Platform {
        variant: None,
        ..Platform::host()
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let record = runtime
        .block_on(store.pull(
            &Reference::parse(&reference).expect("ref"),
            &platform,
            &NoProgress,
        ))
        .expect("pull");
    let layers = store.layer_dirs(&record).expect("layer dirs");

    let dir = work.path().join("bundle");
    let mut cleanup = Cleanup(vec![dir.clone()]);
    let info = create_bundle(&store, &reference, &dir, &BundleOptions::default()).expect("bundle");
    let rootfs = dir.join("rootfs");
    assert!(is_mounted(&rootfs), "rootfs is a mount");
    assert!(rootfs.join("bin/busybox").is_file(), "lower layer visible");
    assert!(
        !rootfs.join("etc/hostname").exists(),
        "whiteout hides the lower file"
    );
    assert!(
        !rootfs.join("opt/old").exists(),
        "opaque dir hides lower contents"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("opt/new")).expect("opt/new"),
        "new\n"
    );

    let config: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).expect("config"))
            .expect("json");
    assert_eq!(config["root"]["path"], "rootfs");
    assert_eq!(
        config["process"]["user"],
        json!({"uid": 4242, "gid": 4343, "additionalGids": [77]})
    );
    let env: Vec<String> = serde_json::from_value(config["process"]["env"].clone()).expect("env");
    assert!(env.contains(&"HOME=/srv/app".to_owned()), "{env:?}");
    assert!(env.contains(&"A=1".to_owned()), "{env:?}");
    assert_eq!(config["hostname"], &info.id[..12]);
    assert_eq!(config["annotations"]["io.berth.image.volumes"], "/data");
    assert_eq!(
        config["linux"]["seccomp"]["defaultAction"],
        "SCMP_ACT_ERRNO"
    );
    assert_eq!(
        live_bundles(&store).len(),
        1,
        "the bundle is recorded as using the image"
    );

    // Writes go to the bundle's upper dir, never into a shared layer.
    std::fs::write(rootfs.join("opt/new"), "changed\n").expect("write through overlay");
    std::fs::remove_file(rootfs.join("bin/busybox")).expect("delete through overlay");
    assert_eq!(
        std::fs::read_to_string(layers[1].join("opt/new")).expect("layer file"),
        "new\n"
    );
    assert!(
        layers[0].join("bin/busybox").is_file(),
        "lower layer untouched"
    );

    // A second bundle of the same image sees the pristine image.
    let second = work.path().join("bundle2");
    cleanup.0.push(second.clone());
    create_bundle(&store, &reference, &second, &BundleOptions::default()).expect("second bundle");
    assert_eq!(
        std::fs::read_to_string(second.join("rootfs/opt/new")).expect("opt/new"),
        "new\n"
    );

    remove_bundle(&dir).expect("remove");
    remove_bundle(&second).expect("remove second");
    assert!(!dir.exists() && !second.exists());
    assert!(!is_mounted(&rootfs));
    assert!(live_bundles(&store).is_empty());
    assert!(
        layers[0].join("bin/busybox").is_file(),
        "removal leaves the layers alone"
    );

    // A failed creation (unknown user) leaves nothing mounted or on disk.
    let failed = work.path().join("bundle-failed");
    let opts = BundleOptions {
        user: Some("ghost".into()),
        ..Default::default()
    };
    let err = create_bundle(&store, &reference, &failed, &opts).expect_err("unknown user");
    assert_eq!(
        err.to_string(),
        "unable to find user ghost: no matching entries in passwd file"
    );
    assert!(!failed.exists());
    assert!(!is_mounted(&failed.join("rootfs")));
}
