//! `push` from a real store: pull what skopeo pushed, tag it for other
//! repositories and registries, push it, and read it back byte for byte.

#![allow(clippy::unwrap_used)]

mod common;

use berth_image::auth::Credentials;
use berth_image::push::push;
use berth_image::registry::{Client, Config};
use berth_image::store::{NoProgress, Platform};
use berth_image::{Digest, Reference};
use berth_testkit::image::{push as skopeo_push, raw_manifest, Layer, OciLayout};
use berth_testkit::registry::Registry;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_sends_the_stored_image_byte_for_byte() {
    if !berth_testkit::require_root() {
        return;
    }
    let open_reg = Registry::start();
    let private = Registry::start_with_htpasswd("carol", "pw");
    let tmp = tempfile::tempdir().unwrap();

    let mut layout = OciLayout::create(&tmp.path().join("oci")).unwrap();
    let top = Layer::new().file("etc/motd", b"pushed by berth\n", 0o644);
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
    layout.tag("1", &m).unwrap();
    let src = format!("{}/src/busybox:1", open_reg.addr());
    skopeo_push(layout.dir(), "1", &src).unwrap();

    let store = common::open_store(&tmp.path().join("root"));
    store
        .pull(
            &Reference::parse(&src).unwrap(),
            &Platform::host(),
            &NoProgress,
        )
        .await
        .unwrap();
    let client = Client::new(Config {
        docker_config: Some(tmp.path().join("config.json")),
        ..Config::default()
    })
    .unwrap();
    let want: Digest = m.digest.parse().unwrap();

    // Same registry, other repository.
    let dst = Reference::parse(&format!("{}/dst/busybox:2", open_reg.addr())).unwrap();
    store.tag(&src, &dst).unwrap();
    assert_eq!(push(&store, &client, &dst).await.unwrap(), want);
    assert_eq!(
        raw_manifest(&dst.to_string(), None).unwrap(),
        raw_manifest(&src, None).unwrap()
    );

    // Another registry that wants credentials.
    let far = Reference::parse(&format!("{}/team/busybox:1", private.addr())).unwrap();
    store.tag(&src, &far).unwrap();
    let err = push(&store, &client, &far).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "push access denied for {}/team/busybox",
            private.addr()
        )),
        "{err}"
    );
    client
        .check_login(private.addr(), &Credentials::basic("carol", "pw"))
        .await
        .unwrap();
    assert_eq!(push(&store, &client, &far).await.unwrap(), want);
    assert_eq!(
        raw_manifest(&far.to_string(), Some("carol:pw")).unwrap(),
        raw_manifest(&src, None).unwrap()
    );

    let missing = Reference::parse(&format!("{}/never:1", open_reg.addr())).unwrap();
    let err = push(&store, &client, &missing)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("No such image"), "{err}");
}
