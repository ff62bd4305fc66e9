//! `berth pull` from registries that are down, speak garbage, serve a
//! manifest berth cannot read or a blob that does not match its digest: one
//! clear line on stderr, exit status 1, no image listed and no partial
//! download left in the data root.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;

use berth_testkit::image::sha256;
use berth_testkit::registry::{free_port, FakeServer, HttpReply};
use common::Berth;
use serde_json::json;

/// A loopback server that answers every connection with bytes that are not
/// HTTP. Stopped on drop.
struct GarbageServer {
    addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GarbageServer {
    fn start() -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                let _ = conn
                    .write_all(b"\x00\xffSSH-2.0-not-a-registry\r\n\x16\x03\x01garbage\r\n\r\n");
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for GarbageServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A fake registry: `/v2/` answers 200, every manifest request gets
/// `content_type` and `manifest`, every blob request gets `blob`.
fn fake_registry(content_type: &'static str, manifest: Vec<u8>, blob: Vec<u8>) -> FakeServer {
    FakeServer::start(move |req| {
        if req.path == "/v2/" {
            HttpReply::new(200).header("Docker-Distribution-API-Version", "registry/2.0")
        } else if req.path.contains("/manifests/") {
            HttpReply::new(200)
                .header("Content-Type", content_type)
                .body(manifest.clone())
        } else if req.path.contains("/blobs/") {
            HttpReply::new(200)
                .header("Content-Type", "application/octet-stream")
                .body(blob.clone())
        } else {
            HttpReply::new(404)
        }
    })
}

/// `berth pull REF` fails with one line containing each of `expected`, and
/// leaves no image, no partial download and no unpacked layer behind.
fn assert_pull_fails_cleanly(reference: &str, expected: &[&str]) {
    let berth = Berth::new();
    let out = berth.run(&["pull", reference]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "pull of {reference} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("berth: "), "{reference}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for part in expected {
        assert!(
            err.contains(part),
            "{reference}: expected {part:?} in {err}"
        );
    }
    assert_eq!(berth.ok(&["images", "-q"]), "", "no image is listed");
    let ingest = berth.data_root().join("content/ingest");
    let left: Vec<PathBuf> = std::fs::read_dir(&ingest)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{reference}: left in ingest/: {left:?}");
    let snapshots: Vec<PathBuf> = std::fs::read_dir(berth.data_root().join("snapshots"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    assert!(
        snapshots.is_empty(),
        "{reference}: no layer (or half-unpacked layer) left: {snapshots:?}"
    );
}

#[test]
fn pulls_from_bad_registries_fail_cleanly() {
    if !berth_testkit::require_root() {
        return;
    }
    let port = free_port().expect("free port");
    assert_pull_fails_cleanly(
        &format!("127.0.0.1:{port}/nothing/listens:1"),
        &["cannot reach registry", "Connection refused"],
    );

    let garbage = GarbageServer::start();
    assert_pull_fails_cleanly(
        &format!("{}/garbage/bytes:1", garbage.addr),
        &["cannot reach registry", "invalid HTTP"],
    );
    drop(garbage);

    let not_json = fake_registry(
        "application/vnd.oci.image.manifest.v1+json",
        b"{ this is not a manifest".to_vec(),
        Vec::new(),
    );
    assert_pull_fails_cleanly(
        &format!("{}/garbage/json:1", not_json.addr()),
        &["invalid image manifest"],
    );

    let unknown_type = "application/vnd.example.unknown.v1+json";
    let unknown = fake_registry(
        unknown_type,
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": unknown_type})).expect("json"),
        Vec::new(),
    );
    assert_pull_fails_cleanly(
        &format!("{}/unknown/type:1", unknown.addr()),
        &["unsupported manifest media type", unknown_type],
    );

    let schema1_type = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    let schema1 = fake_registry(
        schema1_type,
        serde_json::to_vec(
            &json!({"schemaVersion": 1, "name": "old/image", "tag": "1", "fsLayers": []}),
        )
        .expect("json"),
        Vec::new(),
    );
    assert_pull_fails_cleanly(
        &format!("{}/old/schema1:1", schema1.addr()),
        &["schema 1", "not supported"],
    );

    // A blob whose bytes do not match its digest.
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config), "size": config.len()},
        "layers": [],
    }))
    .expect("json");
    let mut wrong = config.to_vec();
    wrong[2] ^= 0x20;
    let tampered = fake_registry(
        "application/vnd.oci.image.manifest.v1+json",
        manifest,
        wrong,
    );
    assert_pull_fails_cleanly(
        &format!("{}/tampered/blob:1", tampered.addr()),
        &["content digest mismatch"],
    );

    // A layer of a media type berth does not know.
    let weird = one_layer_registry(
        "application/vnd.example.layer.v1+weird",
        b"a layer".to_vec(),
    );
    assert_pull_fails_cleanly(
        &format!("{}/weird/layer:1", weird.addr()),
        &[
            "unsupported layer media type",
            "application/vnd.example.layer.v1+weird",
        ],
    );

    // A "gzip" layer that is not gzip (its digest is right).
    let broken = one_layer_registry(
        "application/vnd.oci.image.layer.v1.tar+gzip",
        b"this is not gzip data, nor a tar".to_vec(),
    );
    assert_pull_fails_cleanly(
        &format!("{}/broken/layer:1", broken.addr()),
        &["unpacking layer", "invalid gzip header"],
    );
}

/// A registry serving an image of one layer `layer` of type `media_type`
/// (its digest and diff ID are right).
fn one_layer_registry(media_type: &str, layer: Vec<u8>) -> FakeServer {
    let config = serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}}))
    .expect("json");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": media_type, "digest": sha256(&layer), "size": layer.len()}],
    }))
    .expect("json");
    let config_digest = sha256(&config);
    FakeServer::start(move |req| {
        if req.path == "/v2/" {
            HttpReply::new(200)
        } else if req.path.contains("/manifests/") {
            HttpReply::new(200)
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .body(manifest.clone())
        } else if req.path.ends_with(&config_digest) {
            HttpReply::new(200).body(config.clone())
        } else if req.path.contains("/blobs/") {
            HttpReply::new(200).body(layer.clone())
        } else {
            HttpReply::new(404)
        }
    })
}
