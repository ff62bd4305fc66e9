//! What real networks and registries do now and then: 503s and 429s,
//! connections cut mid-blob, servers that ignore Range, redirects to blob
//! storage on another host.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_image::auth::{self, Credentials};
use berth_image::registry::{BlobStream, Client, Config};
use berth_image::{Digest, Reference};
use berth_testkit::registry::{FakeServer, HttpReply, HttpRequest};

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;

fn client(dir: &tempfile::TempDir) -> Client {
    Client::new(Config {
        docker_config: Some(dir.path().join("config.json")),
        ..Config::default()
    })
    .unwrap()
    .with_retry(4, Duration::from_millis(10))
}

fn manifest_reply() -> HttpReply {
    HttpReply::new(200)
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(MANIFEST)
}

/// 300 KiB of patterned bytes and their digest.
fn blob() -> (Vec<u8>, Digest) {
    let data: Vec<u8> = (0..300 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let d = Digest::sha256_of(&data);
    (data, d)
}

async fn drain(mut s: BlobStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(c) = s.next_chunk().await.unwrap() {
        out.extend_from_slice(&c);
    }
    out
}

/// The `bytes=N-` start of a Range header.
fn range_start(req: &HttpRequest) -> Option<usize> {
    req.header("range")?
        .strip_prefix("bytes=")?
        .trim_end_matches('-')
        .parse()
        .ok()
}

#[tokio::test]
async fn retries_503_and_429_then_succeeds() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = {
        let calls = calls.clone();
        FakeServer::start(move |_| match calls.fetch_add(1, Ordering::SeqCst) {
            0 => HttpReply::new(503).header("Retry-After", "1"),
            1 => HttpReply::new(429),
            _ => manifest_reply(),
        })
    };
    let tmp = tempfile::tempdir().unwrap();
    let r = Reference::parse(&format!("{}/app:1", server.addr())).unwrap();
    let started = Instant::now();
    let m = client(&tmp).manifest(&r).await.unwrap();
    assert_eq!(m.bytes, MANIFEST);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
}

#[tokio::test]
async fn gives_up_after_bounded_attempts_naming_the_status() {
    let server = FakeServer::start(|_| {
        HttpReply::new(503).body(r#"{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}"#)
    });
    let tmp = tempfile::tempdir().unwrap();
    let r = Reference::parse(&format!("{}/app:1", server.addr())).unwrap();
    let err = client(&tmp).manifest(&r).await.unwrap_err().to_string();
    assert_eq!(server.requests().len(), 4);
    assert!(err.contains("try later (UNAVAILABLE) [HTTP 503"), "{err}");

    // Nobody listening: connection errors are retried, then reported.
    let port = berth_testkit::registry::free_port().unwrap();
    let r = Reference::parse(&format!("127.0.0.1:{port}/app:1")).unwrap();
    let err = client(&tmp).manifest(&r).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("cannot reach registry 127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn cut_blob_resumes_with_range() {
    let (data, digest) = blob();
    let served = data.clone();
    let server = FakeServer::start(move |req| match range_start(req) {
        None => HttpReply::new(200).body(served.clone()).cut_after(100_000),
        Some(start) => HttpReply::new(206)
            .header(
                "Content-Range",
                &format!("bytes {start}-{}/{}", served.len() - 1, served.len()),
            )
            .body(served[start..].to_vec()),
    });
    let tmp = tempfile::tempdir().unwrap();
    let r = Reference::parse(&format!("{}/app:1", server.addr())).unwrap();
    let client = client(&tmp);
    let s = client.blob(&r, &digest, 0).await.unwrap();
    assert_eq!((s.offset(), s.total_len()), (0, Some(data.len() as u64)));
    assert_eq!(drain(s).await, data);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(
        range_start(&reqs[1]).is_some_and(|n| n >= 100_000 && n <= data.len()),
        "{:?}",
        reqs[1]
    );

    // Asking for an offset: the stream starts there.
    let s = client.blob(&r, &digest, 1000).await.unwrap();
    assert_eq!((s.offset(), s.total_len()), (1000, Some(data.len() as u64)));
    assert_eq!(drain(s).await, data[1000..]);
}

#[tokio::test]
async fn range_ignoring_server_restarts_and_resume_skips_repeated_bytes() {
    let (data, digest) = blob();
    let served = data.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let server = {
        let calls = calls.clone();
        FakeServer::start(move |_| {
            let reply = HttpReply::new(200).body(served.clone());
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                reply.cut_after(150_000)
            } else {
                reply
            }
        })
    };
    let tmp = tempfile::tempdir().unwrap();
    let r = Reference::parse(&format!("{}/app:1", server.addr())).unwrap();
    let client = client(&tmp);
    assert_eq!(
        drain(client.blob(&r, &digest, 0).await.unwrap()).await,
        data
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let s = client.blob(&r, &digest, 5000).await.unwrap();
    assert_eq!(s.offset(), 0, "Range ignored: the caller must start over");
    assert_eq!(drain(s).await, data);
}

#[tokio::test]
async fn offset_past_the_end_starts_over() {
    let (data, digest) = blob();
    let served = data.clone();
    let server = FakeServer::start(move |req| match range_start(req) {
        Some(_) => HttpReply::new(416),
        None => HttpReply::new(200).body(served.clone()),
    });
    let tmp = tempfile::tempdir().unwrap();
    let r = Reference::parse(&format!("{}/app:1", server.addr())).unwrap();
    let s = client(&tmp)
        .blob(&r, &digest, data.len() as u64)
        .await
        .unwrap();
    assert_eq!(s.offset(), 0);
    assert_eq!(drain(s).await, data);
}

#[tokio::test]
async fn stream_gives_up_after_repeated_cuts() {
    let (data, digest) = blob();
    let server = FakeServer::start(move |_| HttpReply::new(200).body(data.clone()).cut_after(10));
    let tmp = tempfile::tempdir().unwrap();
    let r = Reference::parse(&format!("{}/app:1", server.addr())).unwrap();
    let mut s = client(&tmp).blob(&r, &digest, 0).await.unwrap();
    let err = loop {
        match s.next_chunk().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a cut stream must not look complete"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(
        err.contains(&format!("downloading {digest}")) && err.contains("connection broke"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn redirects_to_another_host_drop_the_authorization_header() {
    let (data, digest) = blob();
    let storage =
        FakeServer::start_on("127.0.0.2", move |_| HttpReply::new(200).body(data.clone()));
    let location = format!("{}/bucket/blob?sig=1", storage.url());
    let registry = FakeServer::start(move |req| {
        if req.header("authorization") != Some("Basic dTpw") {
            return HttpReply::new(401).header("WWW-Authenticate", r#"Basic realm="x""#);
        }
        HttpReply::new(307).header("Location", &location)
    });
    let tmp = tempfile::tempdir().unwrap();
    auth::store(
        &tmp.path().join("config.json"),
        &registry.addr(),
        &Credentials::basic("u", "p"),
    )
    .unwrap();
    let r = Reference::parse(&format!("{}/app:1", registry.addr())).unwrap();
    let bytes = drain(client(&tmp).blob(&r, &digest, 0).await.unwrap()).await;
    assert_eq!(Digest::sha256_of(&bytes), digest);
    let at_storage = storage.requests();
    assert_eq!(at_storage.len(), 1);
    assert_eq!(at_storage[0].path, "/bucket/blob?sig=1");
    assert!(
        at_storage[0].header("authorization").is_none(),
        "credentials leaked to blob storage"
    );
}

#[tokio::test]
async fn schema1_manifests_get_a_clear_error() {
    let server = FakeServer::start(|_| {
        HttpReply::new(200)
            .header(
                "Content-Type",
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
            )
            .body(r#"{"schemaVersion":1}"#)
    });
    let tmp = tempfile::tempdir().unwrap();
    let r = Reference::parse(&format!("{}/old:1", server.addr())).unwrap();
    let err = client(&tmp).manifest(&r).await.unwrap_err().to_string();
    assert!(
        err.contains("schema 1 is deprecated and not supported"),
        "{err}"
    );
    let accept = server.requests()[0]
        .header("accept")
        .unwrap_or_default()
        .to_owned();
    for t in [
        "oci.image.index",
        "oci.image.manifest",
        "manifest.list.v2",
        "manifest.v2+json",
    ] {
        assert!(accept.contains(t), "{accept}");
    }
}

#[tokio::test]
async fn manifests_fetched_by_digest_are_verified() {
    let server = FakeServer::start(|_| manifest_reply());
    let tmp = tempfile::tempdir().unwrap();
    let wrong = Digest::sha256_of(b"something else");
    let r = Reference::parse(&format!("{}/app@{wrong}", server.addr())).unwrap();
    let err = client(&tmp).manifest(&r).await.unwrap_err().to_string();
    assert!(
        err.contains("digest mismatch") && err.contains(wrong.as_str()),
        "{err}"
    );
    let right = Reference::parse(&format!(
        "{}/app@{}",
        server.addr(),
        Digest::sha256_of(MANIFEST)
    ))
    .unwrap();
    client(&tmp).manifest(&right).await.unwrap();
    assert!(server.requests()[1]
        .path
        .ends_with(&format!("/manifests/{}", Digest::sha256_of(MANIFEST))));
}

#[tokio::test]
async fn failed_upload_sessions_start_over_and_stream_the_file() {
    let (data, digest) = blob();
    let sessions = Arc::new(AtomicUsize::new(0));
    let server = {
        let (sessions, digest) = (sessions.clone(), digest.clone());
        FakeServer::start(move |req| match req.method.as_str() {
            "POST" => {
                let n = sessions.fetch_add(1, Ordering::SeqCst) + 1;
                HttpReply::new(202)
                    .header("Location", &format!("/v2/app/blobs/uploads/s{n}?_state=x"))
            }
            "PUT" if req.path.contains("/s1?") => HttpReply::new(500),
            "PUT" => {
                let named = req
                    .path
                    .contains(&format!("digest={}", digest.as_str().replace(':', "%3A")));
                if named && Digest::sha256_of(&req.body) == digest {
                    HttpReply::new(201)
                } else {
                    HttpReply::new(400)
                        .body(r#"{"errors":[{"code":"DIGEST_INVALID","message":"bad"}]}"#)
                }
            }
            _ => HttpReply::new(405),
        })
    };
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("blob");
    std::fs::write(&file, &data).unwrap();
    let r = Reference::parse(&format!("{}/app:1", server.addr())).unwrap();
    client(&tmp)
        .upload_blob(&r, &digest, data.len() as u64, &file)
        .await
        .unwrap();
    assert_eq!(sessions.load(Ordering::SeqCst), 2);
    let puts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|q| q.method == "PUT")
        .collect();
    assert_eq!(
        puts.len(),
        5,
        "4 attempts on the broken session, 1 on the new one"
    );
    assert_eq!(
        puts[4].header("content-length"),
        Some(data.len().to_string().as_str())
    );
}
