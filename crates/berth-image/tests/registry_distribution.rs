//! The registry client against Debian's docker-registry (distribution 2.8):
//! fetch what skopeo pushed, push what skopeo reads back byte for byte.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_image::push::{push_manifest, NoProgress, PushEvent, PushProgress};
use berth_image::registry::{Client, Config, OCI_INDEX, OCI_MANIFEST};
use berth_image::{Digest, Reference};
use berth_testkit::image::{push as skopeo_push, raw_manifest, Desc, Layer, OciLayout};
use berth_testkit::peers::check;
use berth_testkit::registry::Registry;

/// A client that reads no real credentials file.
fn client(home: &Path) -> Client {
    Client::new(Config {
        docker_config: Some(home.join("config.json")),
        ..Config::default()
    })
    .unwrap()
}

/// A two-layer busybox image in an OCI layout, tagged `v1`.
fn layout(dir: &Path) -> (OciLayout, Desc) {
    let mut layout = OciLayout::create(dir).unwrap();
    let base = Layer::busybox().unwrap();
    let top = Layer::new().file("etc/motd", b"hello from berth\n", 0o644);
    let m = layout
        .image(&[base, top], &["/bin/sh"], "linux", "amd64", None)
        .unwrap();
    layout.tag("v1", &m).unwrap();
    (layout, m)
}

fn blob_path(layout: &Path, d: &Digest) -> PathBuf {
    layout.join("blobs").join(d.algorithm()).join(d.encoded())
}

fn descriptors(manifest: &[u8]) -> Vec<(Digest, u64)> {
    let v: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    let mut out = vec![&v["config"]];
    out.extend(v["layers"].as_array().unwrap());
    out.iter()
        .map(|d| {
            (
                d["digest"].as_str().unwrap().parse().unwrap(),
                d["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

async fn read_all(client: &Client, r: &Reference, d: &Digest, offset: u64) -> (u64, Vec<u8>) {
    let mut s = client.blob(r, d, offset).await.unwrap();
    let start = s.offset();
    let mut out = Vec::new();
    while let Some(c) = s.next_chunk().await.unwrap() {
        out.extend_from_slice(&c);
    }
    (start, out)
}

#[tokio::test]
async fn fetches_manifests_and_blobs_skopeo_pushed() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let (layout, m) = layout(&tmp.path().join("oci"));
    skopeo_push(
        layout.dir(),
        "v1",
        &format!("{}/test/busybox:v1", reg.addr()),
    )
    .unwrap();
    let client = client(tmp.path());

    let r = Reference::parse(&format!("{}/test/busybox:v1", reg.addr())).unwrap();
    let fetched = client.manifest(&r).await.unwrap();
    assert_eq!(fetched.media_type, OCI_MANIFEST);
    assert_eq!(
        fetched.digest.as_str(),
        m.digest,
        "skopeo keeps the manifest bytes"
    );
    let by_digest = client
        .manifest(&r.with_digest(fetched.digest.clone()))
        .await
        .unwrap();
    assert_eq!(by_digest.bytes, fetched.bytes);
    let head = client.manifest_descriptor(&r).await.unwrap().unwrap();
    assert_eq!(
        (&head.digest, head.media_type.as_str()),
        (&fetched.digest, OCI_MANIFEST)
    );
    assert_eq!(head.size, fetched.bytes.len() as u64);

    for (d, size) in descriptors(&fetched.bytes) {
        let (start, bytes) = read_all(&client, &r, &d, 0).await;
        assert_eq!((start, bytes.len() as u64), (0, size));
        assert_eq!(Digest::sha256_of(&bytes), d);
        if size > 100 {
            let (start, tail) = read_all(&client, &r, &d, 100).await;
            assert_eq!(start, 100, "distribution honours Range");
            assert_eq!(tail, bytes[100..]);
        }
        let s = client.blob(&r, &d, 0).await.unwrap();
        assert_eq!(s.total_len(), Some(size));
    }
}

#[tokio::test]
async fn errors_name_the_repository_and_the_registry_error() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let client = client(tmp.path());
    let r = Reference::parse(&format!("{}/nope:1", reg.addr())).unwrap();
    let err = client.manifest(&r).await.unwrap_err();
    let text = err.to_string();
    // distribution answers MANIFEST_UNKNOWN for unknown repositories too
    assert!(
        text.contains(&format!("manifest for {}/nope:1 not found", reg.addr())),
        "{text}"
    );
    assert!(
        text.contains("MANIFEST_UNKNOWN") && text.contains("HTTP 404"),
        "{text}"
    );
    assert!(err.is_not_found());
    assert!(client
        .manifest_descriptor(&r)
        .await
        .unwrap_err()
        .is_not_found());

    let (layout, _) = layout(&tmp.path().join("oci"));
    skopeo_push(layout.dir(), "v1", &format!("{}/there:v1", reg.addr())).unwrap();
    let r = Reference::parse(&format!("{}/there:v2", reg.addr())).unwrap();
    let text = client.manifest(&r).await.unwrap_err().to_string();
    assert!(
        text.contains(&format!("manifest for {}/there:v2 not found", reg.addr())),
        "{text}"
    );
    assert!(text.contains("MANIFEST_UNKNOWN"), "{text}");
    let missing = Digest::sha256_of(b"not there");
    assert!(client
        .blob(&r, &missing, 0)
        .await
        .unwrap_err()
        .is_not_found());
}

#[derive(Default)]
struct Events(std::sync::Mutex<Vec<PushEvent>>);
impl PushProgress for Events {
    fn event(&self, e: PushEvent) {
        self.0.lock().unwrap().push(e);
    }
}

#[tokio::test]
async fn pushes_byte_identical_images_skopeo_reads_back() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let (layout, m) = layout(&tmp.path().join("oci"));
    let client = client(tmp.path());
    let dir = layout.dir().to_owned();
    let paths = move |d: &Digest| blob_path(&dir, d);
    let r = Reference::parse(&format!("{}/pushed/busybox:1", reg.addr())).unwrap();
    let digest: Digest = m.digest.parse().unwrap();

    let events = Events::default();
    let pushed = push_manifest(&client, &r, &digest, OCI_MANIFEST, &paths, &events)
        .await
        .unwrap();
    assert_eq!(pushed, digest);
    let uploaded = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, PushEvent::Pushed { .. }))
        .count();
    assert_eq!(uploaded, 3, "config and two layers uploaded");
    let raw = raw_manifest(&r.to_string(), None).unwrap();
    assert_eq!(
        raw,
        std::fs::read(blob_path(layout.dir(), &digest)).unwrap()
    );

    // skopeo copies it out again: every blob identical.
    let back = tmp.path().join("back");
    check(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{r}"))
            .arg(format!("oci:{}:x", back.display())),
    );
    for (d, _) in descriptors(&raw) {
        let theirs = std::fs::read(blob_path(&back, &d)).unwrap();
        assert_eq!(
            theirs,
            std::fs::read(blob_path(layout.dir(), &d)).unwrap(),
            "{d}"
        );
    }

    // A second push uploads nothing.
    let again = Events::default();
    push_manifest(
        &client,
        &r.with_tag("2"),
        &digest,
        OCI_MANIFEST,
        &paths,
        &again,
    )
    .await
    .unwrap();
    let events = again.0.lock().unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, PushEvent::Exists { .. }))
            .count(),
        3
    );
    assert!(!events.iter().any(|e| matches!(e, PushEvent::Pushed { .. })));
}

#[tokio::test]
async fn pushes_a_multi_platform_index_and_mounts_blobs() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&tmp.path().join("oci")).unwrap();
    let amd = Layer::new().file("arch", b"amd64\n", 0o644);
    let arm = Layer::new().file("arch", b"arm64\n", 0o644);
    let m1 = layout
        .image(&[amd], &["/arch"], "linux", "amd64", None)
        .unwrap();
    let m2 = layout
        .image(&[arm], &["/arch"], "linux", "arm64", Some("v8"))
        .unwrap();
    let index = layout.index(&[m1, m2]).unwrap();
    let client = client(tmp.path());
    let dir = layout.dir().to_owned();
    let paths = move |d: &Digest| blob_path(&dir, d);
    let r = Reference::parse(&format!("{}/multi:1", reg.addr())).unwrap();
    let digest: Digest = index.digest.parse().unwrap();
    push_manifest(&client, &r, &digest, OCI_INDEX, &paths, &NoProgress)
        .await
        .unwrap();

    let fetched = client.manifest(&r).await.unwrap();
    assert_eq!(
        (fetched.media_type.as_str(), &fetched.digest),
        (OCI_INDEX, &digest)
    );
    assert_eq!(raw_manifest(&r.to_string(), None).unwrap(), fetched.bytes);

    // Cross-repository mount of a blob the registry has.
    let other = Reference::parse(&format!("{}/other:1", reg.addr())).unwrap();
    let child = client
        .manifest(
            &r.with_digest(
                serde_json::from_slice::<serde_json::Value>(&fetched.bytes).unwrap()["manifests"]
                    [0]["digest"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
            ),
        )
        .await
        .unwrap();
    let (config, _) = descriptors(&child.bytes)[0].clone();
    assert!(!client.blob_exists(&other, &config).await.unwrap());
    assert!(client.mount_blob(&other, &config, "multi").await.unwrap());
    assert!(client.blob_exists(&other, &config).await.unwrap());
    let unknown = Digest::sha256_of(b"never uploaded");
    assert!(!client.mount_blob(&other, &unknown, "multi").await.unwrap());
}

/// Throughput of one blob download over loopback (run by hand:
/// `cargo test -p berth-image --release --test registry_distribution -- --ignored --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a test"]
async fn blob_download_throughput() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&tmp.path().join("oci")).unwrap();
    let big = Layer::new().random_file("big", 100 << 20);
    let m = layout
        .image(&[big], &["/x"], "linux", "amd64", None)
        .unwrap();
    layout.tag("1", &m).unwrap();
    skopeo_push(layout.dir(), "1", &format!("{}/big:1", reg.addr())).unwrap();
    let client = client(tmp.path());
    let r = Reference::parse(&format!("{}/big:1", reg.addr())).unwrap();
    let fetched = client.manifest(&r).await.unwrap();
    let (layer, size) = descriptors(&fetched.bytes)[1].clone();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let mut s = client.blob(&r, &layer, 0).await.unwrap();
        let mut n = 0u64;
        while let Some(c) = s.next_chunk().await.unwrap() {
            n += c.len() as u64;
        }
        assert_eq!(n, size);
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "blob {} MiB in {:.0} ms: {:.0} MiB/s",
        size >> 20,
        best * 1000.0,
        (size as f64 / 1048576.0) / best
    );
}
