//! `registry-mirrors`: docker.io pulls go to the mirrors first, in order,
//! and fall back to Docker Hub. Docker Hub itself is made unreachable (a
//! proxy on a dead loopback port) so this test never leaves the machine.

#![allow(clippy::unwrap_used)]

use berth_image::registry::{Client, Config};
use berth_image::{Digest, Reference};
use berth_testkit::image::{push as skopeo_push, Layer, OciLayout};
use berth_testkit::registry::{free_port, Registry};

#[tokio::test]
async fn docker_hub_pulls_use_mirrors_in_order_then_fall_back() {
    let dead = free_port().unwrap();
    // Before any client exists: whatever is not loopback goes to a dead proxy.
    std::env::set_var("HTTPS_PROXY", format!("http://127.0.0.1:{dead}"));
    std::env::set_var("HTTP_PROXY", format!("http://127.0.0.1:{dead}"));

    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&tmp.path().join("oci")).unwrap();
    let m = layout
        .image(
            &[Layer::new().file("m", b"mirror\n", 0o644)],
            &["/m"],
            "linux",
            "amd64",
            None,
        )
        .unwrap();
    layout.tag("1", &m).unwrap();
    skopeo_push(
        layout.dir(),
        "1",
        &format!("{}/library/busybox:1", reg.addr()),
    )
    .unwrap();

    let client = Client::new(Config {
        registry_mirrors: vec![
            format!("http://127.0.0.1:{dead}"),
            format!("http://{}/", reg.addr()),
        ],
        docker_config: Some(tmp.path().join("config.json")),
        ..Config::default()
    })
    .unwrap()
    .with_retry(2, std::time::Duration::from_millis(5));

    let r = Reference::parse("busybox:1").unwrap();
    let fetched = client.manifest(&r).await.unwrap();
    assert_eq!(fetched.digest.as_str(), m.digest);
    let v: serde_json::Value = serde_json::from_slice(&fetched.bytes).unwrap();
    let layer: Digest = v["layers"][0]["digest"].as_str().unwrap().parse().unwrap();
    let mut s = client.blob(&r, &layer, 0).await.unwrap();
    let mut bytes = Vec::new();
    while let Some(c) = s.next_chunk().await.unwrap() {
        bytes.extend_from_slice(&c);
    }
    assert_eq!(Digest::sha256_of(&bytes), layer);

    // Not on any mirror: the last word is Docker Hub's (here: unreachable).
    let err = client
        .manifest(&Reference::parse("busybox:absent").unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot reach registry docker.io"),
        "{err}"
    );
}
