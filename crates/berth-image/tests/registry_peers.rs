//! What berth pushes, containerd's `ctr` pulls back byte for byte.

#![allow(clippy::unwrap_used)]

use berth_image::push::{push_manifest, NoProgress};
use berth_image::registry::{Client, Config, OCI_MANIFEST};
use berth_image::store::Platform;
use berth_image::{Digest, Reference};
use berth_testkit::image::{Layer, OciLayout};
use berth_testkit::peers::{check, Containerd};
use berth_testkit::registry::Registry;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctr_pulls_what_berth_pushed() {
    if !berth_testkit::require_root() {
        return;
    }
    let reg = Registry::start();
    let containerd = Containerd::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&tmp.path().join("oci")).unwrap();
    let top = Layer::new().file("etc/motd", b"from berth push\n", 0o644);
    let arch = Platform::host().architecture;
    let m = layout
        .image(
            &[Layer::busybox().unwrap(), top],
            &["/bin/sh"],
            "linux",
            &arch,
            None,
        )
        .unwrap();
    let dir = layout.dir().to_owned();
    let paths = move |d: &Digest| dir.join("blobs/sha256").join(d.encoded());
    let client = Client::new(Config {
        docker_config: Some(tmp.path().join("config.json")),
        ..Config::default()
    })
    .unwrap();
    let r = Reference::parse(&format!("{}/peers/busybox:1", reg.addr())).unwrap();
    let digest: Digest = m.digest.parse().unwrap();
    push_manifest(&client, &r, &digest, OCI_MANIFEST, &paths, &NoProgress)
        .await
        .unwrap();

    let ns = berth_testkit::unique_id("berthreg");
    check(
        containerd
            .ctr()
            .args(["-n", &ns, "images", "pull", "--plain-http", &r.to_string()]),
    );
    let listed = check(containerd.ctr().args(["-n", &ns, "images", "ls"]));
    assert!(listed.contains(digest.as_str()), "{listed}");
    let manifest = std::fs::read(paths(&digest)).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let mut digests = vec![
        digest.to_string(),
        v["config"]["digest"].as_str().unwrap().to_owned(),
    ];
    digests.extend(
        v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned()),
    );
    for d in digests {
        let out = containerd
            .ctr()
            .args(["-n", &ns, "content", "get", &d])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.stdout,
            std::fs::read(paths(&d.parse().unwrap())).unwrap(),
            "{d}"
        );
    }
    check(
        containerd
            .ctr()
            .args(["-n", &ns, "images", "rm", &r.to_string()]),
    );
}
