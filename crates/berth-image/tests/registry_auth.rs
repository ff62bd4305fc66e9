//! Registry authentication: htpasswd Basic auth on a real docker-registry,
//! credentials from config.json, `check_login`, and the Bearer token dance
//! (challenge → token → retry, caching, refresh on 401 and on expiry)
//! against a test token endpoint.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use berth_image::auth::{self, Credentials};
use berth_image::push::{push_manifest, NoProgress};
use berth_image::registry::{Client, Config, OCI_MANIFEST};
use berth_image::{Digest, Reference};
use berth_testkit::image::{Layer, OciLayout};
use berth_testkit::registry::{FakeServer, HttpReply, HttpRequest, Registry};

fn client_with(config_file: &Path) -> Client {
    Client::new(Config {
        docker_config: Some(config_file.to_owned()),
        ..Config::default()
    })
    .unwrap()
}

#[tokio::test]
async fn basic_auth_registry_needs_the_stored_credentials() {
    let reg = Registry::start_with_htpasswd("alice", "s3cret");
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&tmp.path().join("oci")).unwrap();
    let m = layout
        .image(
            &[Layer::new().file("a", b"a\n", 0o644)],
            &["/a"],
            "linux",
            "amd64",
            None,
        )
        .unwrap();
    let dir = layout.dir().to_owned();
    let paths = move |d: &Digest| dir.join("blobs/sha256").join(d.encoded());
    let digest: Digest = m.digest.parse().unwrap();
    let r = Reference::parse(&format!("{}/private:1", reg.addr())).unwrap();
    let config = tmp.path().join("docker/config.json");

    let anonymous = client_with(&config);
    let err = push_manifest(&anonymous, &r, &digest, OCI_MANIFEST, &paths, &NoProgress)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("push access denied for {}/private", reg.addr())),
        "{text}"
    );
    assert!(text.contains("401"), "{text}");

    let wrong = anonymous
        .check_login(reg.addr(), &Credentials::basic("alice", "nope"))
        .await
        .unwrap_err();
    assert!(
        wrong
            .to_string()
            .contains(&format!("login to {} failed", reg.addr())),
        "{wrong}"
    );
    assert_eq!(wrong.status(), Some(401));
    anonymous
        .check_login(reg.addr(), &Credentials::basic("alice", "s3cret"))
        .await
        .unwrap();

    // What `berth login` does after the check: write config.json.
    auth::store(&config, reg.addr(), &Credentials::basic("alice", "s3cret")).unwrap();
    let client = client_with(&config);
    push_manifest(&client, &r, &digest, OCI_MANIFEST, &paths, &NoProgress)
        .await
        .unwrap();
    assert_eq!(client.manifest(&r).await.unwrap().digest, digest);
    assert!(
        anonymous.manifest(&r).await.is_ok(),
        "check_login made the creds current"
    );

    assert!(auth::erase(&config, reg.addr()).unwrap());
    let err = client_with(&config).manifest(&r).await.unwrap_err();
    assert!(err.to_string().contains("pull access denied"), "{err}");
}

/// A registry-like endpoint that wants `Bearer <current token>` and a token
/// endpoint that hands out numbered tokens.
struct TokenWorld {
    registry: FakeServer,
    tokens: FakeServer,
    issued: Arc<AtomicUsize>,
    /// the token the registry accepts now
    valid: Arc<Mutex<String>>,
    token_requests: Arc<Mutex<Vec<HttpRequest>>>,
}

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;

impl TokenWorld {
    fn start(expires_in: u64, basic: Option<&'static str>) -> Self {
        let issued = Arc::new(AtomicUsize::new(0));
        let valid = Arc::new(Mutex::new(String::new()));
        let token_requests = Arc::new(Mutex::new(Vec::new()));
        let tokens = {
            let (issued, valid, log) = (issued.clone(), valid.clone(), token_requests.clone());
            FakeServer::start(move |req| {
                log.lock().unwrap().push(req.clone());
                if let Some(user_pass) = basic {
                    let want = format!("Basic {}", STANDARD.encode(user_pass));
                    if req.header("authorization") != Some(want.as_str()) {
                        return HttpReply::new(401).body(
                            r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
                        );
                    }
                }
                if !req.path.contains("service=fake")
                    || !req.path.contains("scope=repository%3Aapp%3Apull")
                {
                    return HttpReply::new(400);
                }
                let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
                let token = format!("tok-{n}");
                *valid.lock().unwrap() = token.clone();
                HttpReply::new(200).body(format!(
                    r#"{{"token":"{token}","expires_in":{expires_in}}}"#
                ))
            })
        };
        let realm = format!("{}/token", tokens.url());
        let registry = {
            let valid = valid.clone();
            FakeServer::start(move |req| {
                let want = format!("Bearer {}", valid.lock().unwrap());
                if req.header("authorization") != Some(want.as_str()) {
                    let challenge = format!(
                        r#"Bearer realm="{realm}",service="fake",scope="repository:app:pull""#
                    );
                    return HttpReply::new(401)
                        .header("WWW-Authenticate", &challenge)
                        .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#);
                }
                HttpReply::new(200)
                    .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                    .body(MANIFEST)
            })
        };
        Self {
            registry,
            tokens,
            issued,
            valid,
            token_requests,
        }
    }

    fn reference(&self) -> Reference {
        Reference::parse(&format!("{}/app:1", self.registry.addr())).unwrap()
    }
}

#[tokio::test]
async fn bearer_challenge_token_retry_and_cache() {
    let world = TokenWorld::start(300, None);
    let tmp = tempfile::tempdir().unwrap();
    let client = client_with(&tmp.path().join("config.json"));
    let r = world.reference();

    let m = client.manifest(&r).await.unwrap();
    assert_eq!(m.bytes, MANIFEST);
    assert_eq!(
        world.registry.requests().len(),
        2,
        "401, then the retry with a token"
    );
    assert_eq!(world.issued.load(Ordering::SeqCst), 1);
    assert!(
        world.token_requests.lock().unwrap()[0]
            .header("authorization")
            .is_none(),
        "anonymous"
    );

    // Cached: one request, no new token; clones share the cache.
    client.clone().manifest(&r).await.unwrap();
    assert_eq!(world.registry.requests().len(), 3);
    assert_eq!(world.issued.load(Ordering::SeqCst), 1);

    // The registry stops accepting the token: 401 → new token → retry.
    *world.valid.lock().unwrap() = "revoked".into();
    client.manifest(&r).await.unwrap();
    assert_eq!(world.issued.load(Ordering::SeqCst), 2);
    assert_eq!(world.registry.requests().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_requests_share_one_token_fetch() {
    let world = TokenWorld::start(300, None);
    let tmp = tempfile::tempdir().unwrap();
    let client = client_with(&tmp.path().join("config.json"));
    let r = world.reference();
    let jobs: Vec<_> = (0..6)
        .map(|_| {
            let (client, r) = (client.clone(), r.clone());
            tokio::spawn(async move { client.manifest(&r).await.map(|m| m.bytes) })
        })
        .collect();
    for j in jobs {
        assert_eq!(j.await.unwrap().unwrap(), MANIFEST);
    }
    assert_eq!(world.issued.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn expired_tokens_are_refreshed_before_use() {
    let world = TokenWorld::start(1, None);
    let tmp = tempfile::tempdir().unwrap();
    let client = client_with(&tmp.path().join("config.json"));
    let r = world.reference();
    client.manifest(&r).await.unwrap();
    assert_eq!(world.issued.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.manifest(&r).await.unwrap();
    assert_eq!(
        world.issued.load(Ordering::SeqCst),
        2,
        "fetched a fresh token"
    );
    assert_eq!(
        world.registry.requests().len(),
        3,
        "no 401 round trip for the refresh"
    );
}

#[tokio::test]
async fn token_endpoint_gets_basic_credentials() {
    let world = TokenWorld::start(300, Some("bob:pw"));
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.json");
    let r = world.reference();

    let err = client_with(&config)
        .manifest(&r)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("getting a token for") && err.contains("401"),
        "{err}"
    );
    assert!(err.contains("bad credentials (UNAUTHORIZED)"), "{err}");

    auth::store(
        &config,
        world.registry.addr().as_str(),
        &Credentials::basic("bob", "pw"),
    )
    .unwrap();
    let client = client_with(&config);
    client.manifest(&r).await.unwrap();
    let last = world
        .token_requests
        .lock()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(last.header("authorization"), Some("Basic Ym9iOnB3"));

    // check_login answers the challenge with the given credentials.
    let fresh = client_with(&tmp.path().join("none.json"));
    fresh
        .check_login(&world.registry.addr(), &Credentials::basic("bob", "pw"))
        .await
        .unwrap();
    let bad = fresh
        .check_login(&world.registry.addr(), &Credentials::basic("bob", "x"))
        .await;
    assert_eq!(bad.unwrap_err().status(), Some(401));
    let _ = &world.tokens;
}

#[tokio::test]
async fn identity_tokens_use_the_oauth2_refresh_grant() {
    let seen = Arc::new(Mutex::new(Vec::<HttpRequest>::new()));
    let tokens = {
        let seen = seen.clone();
        FakeServer::start(move |req| {
            seen.lock().unwrap().push(req.clone());
            HttpReply::new(200).body(r#"{"access_token":"oauth-tok","expires_in":60}"#)
        })
    };
    let realm = format!("{}/token", tokens.url());
    let registry = FakeServer::start(move |req| {
        if req.header("authorization") != Some("Bearer oauth-tok") {
            return HttpReply::new(401).header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm}",service="svc""#),
            );
        }
        HttpReply::new(200)
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body(MANIFEST)
    });
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"","identitytoken":"refresh-me"}}}}}}"#,
            registry.addr()
        ),
    )
    .unwrap();
    let r = Reference::parse(&format!("{}/app:1", registry.addr())).unwrap();
    client_with(&config).manifest(&r).await.unwrap();
    let req = seen.lock().unwrap()[0].clone();
    assert_eq!(req.method, "POST");
    let body = String::from_utf8(req.body).unwrap();
    assert!(
        body.contains("grant_type=refresh_token") && body.contains("refresh_token=refresh-me"),
        "{body}"
    );
    assert!(
        body.contains("service=svc") && body.contains("scope=repository%3Aapp%3Apull"),
        "{body}"
    );
}
