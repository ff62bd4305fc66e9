//! Pulls from a real local registry (Debian's docker-registry) into a
//! temporary store: layer sharing, whiteouts through a real overlay mount,
//! platform selection, interrupted and corrupt downloads, rmi and prune.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use berth_image::store::{NoProgress, Platform, PullEvent, PullProgress, Removed};
use berth_image::{Digest, ImageStore, Reference};
use berth_testkit::image::{push, Layer, OciLayout};
use berth_testkit::registry::Registry;
use common::open_store;

/// The registry's stored copy of a blob.
fn registry_blob(reg: &Registry, digest: &str) -> PathBuf {
    let hex = &digest[7..];
    reg.storage()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

fn port_of(reg: &Registry) -> u16 {
    reg.addr()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap()
}

fn host_platform() -> Platform {
    Platform::host()
}

async fn pull(
    store: &ImageStore,
    r: &str,
) -> Result<berth_image::store::ImageRecord, berth_image::store::Error> {
    store
        .pull(&Reference::parse(r).unwrap(), &host_platform(), &NoProgress)
        .await
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0)
}

fn snapshots(root: &Path) -> usize {
    count(&root.join("snapshots"))
}

fn blobs(root: &Path) -> usize {
    count(&root.join("content/blobs/sha256"))
}

/// Build `layers` as `name:tag` in a fresh layout and push it.
fn publish(reg: &Registry, name: &str, layers: &[Layer]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(dir.path()).unwrap();
    let m = layout
        .image(
            layers,
            &["/bin/sh"],
            "linux",
            &host_platform().architecture,
            None,
        )
        .unwrap();
    layout.tag("latest", &m).unwrap();
    let r = format!("{}/{name}:latest", reg.addr());
    push(dir.path(), "latest", &r).unwrap();
    r
}

/// Records pull events.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<PullEvent>>);

impl PullProgress for Recorder {
    fn event(&self, event: PullEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    fn count(&self, f: impl Fn(&PullEvent) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|e| f(e)).count()
    }
}

/// Unmounts on drop.
struct MountGuard(PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_then_mount_shows_whiteouts_and_opaque_dirs() {
    if !berth_testkit::require_root() {
        return;
    }
    let reg = Registry::start();
    let base = Layer::busybox().unwrap();
    let mid = Layer::new()
        .dir("data", 0o755)
        .file("data/a", b"a", 0o644)
        .file("data/b", b"b", 0o644)
        .file("gone", b"bye", 0o644)
        .random_file("big", 3 << 20);
    let top = Layer::new()
        .whiteout("gone")
        .opaque("data")
        .file("data/c", b"c", 0o644);
    let r = publish(&reg, "layered", &[base, mid, top]);

    let root = tempfile::tempdir().unwrap();
    let store = open_store(root.path());
    let events = Recorder::default();
    let reference = Reference::parse(&r).unwrap();
    let rec = store
        .pull(&reference, &host_platform(), &events)
        .await
        .unwrap();
    assert_eq!(rec.name, r);
    assert_eq!(snapshots(root.path()), 3);
    assert_eq!(events.count(|e| matches!(e, PullEvent::Resolved { .. })), 1);
    assert_eq!(
        events.count(|e| matches!(e, PullEvent::LayerStart { .. })),
        3
    );
    assert_eq!(
        events.count(|e| matches!(e, PullEvent::LayerDone { .. })),
        3
    );
    assert!(
        events
            .count(|e| matches!(e, PullEvent::LayerProgress { done, total, .. } if done == total))
            >= 3
    );
    // resolvable by familiar name, full id and short id
    assert_eq!(store.resolve(&r).unwrap().id, rec.id);
    assert_eq!(store.resolve(rec.id.as_str()).unwrap().name, r);
    assert_eq!(store.resolve(&rec.id.encoded()[..12]).unwrap().name, r);
    assert!(matches!(
        store.resolve("nothere"),
        Err(berth_image::store::Error::NotFound(_))
    ));
    assert_eq!(store.list().unwrap().len(), 1);

    let container = tempfile::tempdir().unwrap();
    let mounts = store
        .prepare_rw(&rec, &container.path().join("rw"))
        .unwrap();
    let target = container.path().join("rootfs");
    std::fs::create_dir(&target).unwrap();
    berth_image::snapshot::mount(&mounts, &target).unwrap();
    let _guard = MountGuard(target.clone());
    assert!(target.join("bin/busybox").is_file());
    assert!(
        !target.join("gone").exists(),
        "whiteout hides the lower file"
    );
    let mut names: Vec<String> = std::fs::read_dir(target.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["c"], "opaque dir hides the lower entries");
    assert_eq!(
        std::fs::metadata(target.join("big")).unwrap().len(),
        3 << 20
    );
    // writes land in the container's upper dir, not in a shared layer
    std::fs::write(target.join("new"), b"x").unwrap();
    assert!(container.path().join("rw/upper/new").is_file());

    // pulling again downloads nothing and keeps one copy
    let events = Recorder::default();
    let again = store
        .pull(&reference, &host_platform(), &events)
        .await
        .unwrap();
    assert_eq!(again.id, rec.id);
    assert_eq!(
        events.count(|e| matches!(e, PullEvent::LayerExists { .. })),
        3
    );
    assert_eq!(
        events.count(|e| matches!(e, PullEvent::LayerStart { .. })),
        0
    );
    assert_eq!(snapshots(root.path()), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_base_is_stored_once_and_rmi_frees_the_rest() {
    let reg = Registry::start();
    let base = Layer::busybox().unwrap().random_file("base.bin", 1 << 20);
    let a = publish(
        &reg,
        "a",
        &[base.clone(), Layer::new().file("a", b"a", 0o644)],
    );
    let b = publish(&reg, "b", &[base, Layer::new().file("b", b"b", 0o644)]);

    let root = tempfile::tempdir().unwrap();
    let store = open_store(root.path());
    let ra = pull(&store, &a).await.unwrap();
    let rb = pull(&store, &b).await.unwrap();
    assert_eq!(snapshots(root.path()), 3, "base + two tops");
    // blobs: shared base layer, 2 tops, 2 configs, 2 manifests
    assert_eq!(blobs(root.path()), 7);
    let base_dir = &store.layer_dirs(&ra).unwrap()[0];
    assert_eq!(base_dir, &store.layer_dirs(&rb).unwrap()[0]);

    // tag then rmi the tag: only untagged
    store
        .tag(&a, &Reference::parse("alias:1").unwrap())
        .unwrap();
    assert_eq!(
        store.remove("alias:1", false).unwrap(),
        vec![Removed::Untagged("alias:1".into())]
    );
    assert_eq!(snapshots(root.path()), 3);

    // rmi a: its top layer, config and manifest go; the base stays for b
    let removed = store.remove(&a, false).unwrap();
    assert!(
        removed.contains(&Removed::Deleted(ra.id.clone())),
        "{removed:?}"
    );
    assert_eq!(snapshots(root.path()), 2);
    assert_eq!(blobs(root.path()), 4);
    assert!(base_dir.is_dir());
    assert!(store.layer_dirs(&rb).unwrap().iter().all(|d| d.is_dir()));

    // prune -a: nothing left
    let pruned = store.prune(true).unwrap();
    assert!(pruned.contains(&Removed::Deleted(rb.id.clone())));
    assert_eq!(snapshots(root.path()), 0);
    assert_eq!(blobs(root.path()), 0);
    assert!(store.list().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_pull_selects_the_requested_platform() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(dir.path()).unwrap();
    let amd = layout
        .image(
            &[Layer::new().file("arch", b"amd64", 0o644)],
            &["true"],
            "linux",
            "amd64",
            None,
        )
        .unwrap();
    let arm = layout
        .image(
            &[Layer::new().file("arch", b"arm64", 0o644)],
            &["true"],
            "linux",
            "arm64",
            Some("v8"),
        )
        .unwrap();
    let index = layout.index(&[amd.clone(), arm.clone()]).unwrap();
    layout.tag("multi", &index).unwrap();
    let r = format!("{}/multi:multi", reg.addr());
    push(dir.path(), "multi", &r).unwrap();

    let root = tempfile::tempdir().unwrap();
    let store = open_store(root.path());
    let reference = Reference::parse(&r).unwrap();
    let arm_rec = store
        .pull(
            &reference,
            &Platform::parse("linux/arm64").unwrap(),
            &NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(arm_rec.target.digest().to_string(), arm.digest);
    assert_eq!(
        arm_rec.repo_digest.as_ref().map(Digest::to_string),
        Some(index.digest.clone())
    );
    let dirs = store.layer_dirs(&arm_rec).unwrap();
    assert_eq!(std::fs::read(dirs[0].join("arch")).unwrap(), b"arm64");

    let amd_rec = store
        .pull(
            &reference,
            &Platform::parse("linux/amd64").unwrap(),
            &NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(amd_rec.target.digest().to_string(), amd.digest);
    let err = store
        .pull(
            &reference,
            &Platform::parse("linux/s390x").unwrap(),
            &NoProgress,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no matching manifest for linux/s390x"),
        "{err}"
    );

    // by digest: recorded as repo@digest, resolvable both ways
    let pinned = format!("{}/multi@{}", reg.addr(), index.digest);
    let rec = pull(&store, &pinned).await.unwrap();
    assert_eq!(rec.name, pinned);
    assert_eq!(store.resolve(&pinned).unwrap().name, pinned);
}

/// A TCP proxy in front of the registry that, while `cut` is set, closes a
/// connection after `limit` bytes of response and then plays dead (closes
/// every new connection at once), as a registry killed mid-blob would.
/// Counts bytes served.
struct CutProxy {
    port: u16,
    cut: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
}

impl CutProxy {
    fn start(upstream: u16, limit: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(true));
        let served = Arc::new(AtomicU64::new(0));
        let (c, s) = (cut.clone(), served.clone());
        let dead = Arc::new(AtomicBool::new(false));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if dead.load(Ordering::SeqCst) && c.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let dead = dead.clone();
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c, s) = (c.clone(), s.clone());
                let (mut cr, mut sw) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut cr, &mut sw);
                    let _ = sw.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let (mut sr, mut cw) = (server, client);
                    let mut buf = [0u8; 16384];
                    let mut sent = 0u64;
                    loop {
                        let n = match sr.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let n = if c.load(Ordering::SeqCst) {
                            n.min((limit - sent) as usize)
                        } else {
                            n
                        };
                        if cw.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n as u64;
                        s.fetch_add(n as u64, Ordering::SeqCst);
                        if c.load(Ordering::SeqCst) && sent >= limit {
                            dead.store(true, Ordering::SeqCst);
                            break;
                        }
                    }
                    let _ = cw.shutdown(std::net::Shutdown::Both);
                    let _ = sr.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Self { port, cut, served }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_pull_leaves_no_image_and_resumes() {
    let reg = Registry::start();
    let big = Layer::new().random_file("big", 8 << 20);
    publish(&reg, "cut", &[big]);
    let proxy = CutProxy::start(port_of(&reg), 3 << 20);
    let r = format!("127.0.0.1:{}/cut:latest", proxy.port);

    let root = tempfile::tempdir().unwrap();
    let store = open_store(root.path());
    let err = pull(&store, &r).await.unwrap_err();
    eprintln!("interrupted pull: {err}");
    assert!(
        store.list().unwrap().is_empty(),
        "no image after a failed pull"
    );
    assert_eq!(snapshots(root.path()), 0);
    assert_eq!(count(&root.path().join("snapshots")), 0);
    // only the config blob (complete, verified) may be in the store
    assert!(blobs(root.path()) <= 1);
    let partial: u64 = std::fs::read_dir(root.path().join("content/ingest"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(partial > 0, "the partial download is kept for resuming");

    proxy.cut.store(false, Ordering::SeqCst);
    let before = proxy.served.load(Ordering::SeqCst);
    let rec = pull(&store, &r).await.unwrap();
    let second = proxy.served.load(Ordering::SeqCst) - before;
    assert!(
        second < (8 << 20) - partial / 2,
        "resumed: served {second} bytes, {partial} were already here"
    );
    let dirs = store.layer_dirs(&rec).unwrap();
    assert_eq!(
        std::fs::metadata(dirs[0].join("big")).unwrap().len(),
        8 << 20
    );
    assert_eq!(count(&root.path().join("content/ingest")), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_blob_is_rejected() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(dir.path()).unwrap();
    let m = layout
        .image(
            &[Layer::new().random_file("f", 1 << 20)],
            &["true"],
            "linux",
            &host_platform().architecture,
            None,
        )
        .unwrap();
    layout.tag("latest", &m).unwrap();
    let r = format!("{}/corrupt:latest", reg.addr());
    push(dir.path(), "latest", &r).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("blobs/sha256").join(&m.digest[7..])).unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    // flip bytes in the middle of the registry's copy (same size)
    let file = registry_blob(&reg, &layer);
    let mut data = std::fs::read(&file).unwrap();
    let mid = data.len() / 2;
    for b in &mut data[mid..mid + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&file, data).unwrap();

    let root = tempfile::tempdir().unwrap();
    let store = open_store(root.path());
    let err = pull(&store, &r).await.unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    assert!(store.list().unwrap().is_empty());
    assert!(!root
        .path()
        .join("content/blobs")
        .join(layer.replace(':', "/"))
        .exists());
    assert_eq!(
        count(&root.path().join("content/ingest")),
        0,
        "a corrupt partial is not kept"
    );
    assert_eq!(count(&root.path().join("snapshots")), 0);
    let hidden = std::fs::read_dir(root.path().join("snapshots"))
        .unwrap()
        .count();
    assert_eq!(hidden, 0, "no temporary unpack dir is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_layers_mount_past_the_page_size_limit() {
    if !berth_testkit::require_root() {
        return;
    }
    let reg = Registry::start();
    let layers: Vec<Layer> = (0..60)
        .map(|i| Layer::new().file(&format!("l{i}"), b"x", 0o644))
        .collect();
    let r = publish(&reg, "tall", &layers);
    let root = tempfile::tempdir().unwrap();
    let store = open_store(root.path());
    let rec = pull(&store, &r).await.unwrap();
    let container = tempfile::tempdir().unwrap();
    let mounts = store
        .prepare_rw(&rec, &container.path().join("rw"))
        .unwrap();
    assert!(
        mounts[0].options.join(",").len() > 4096,
        "lowerdir exceeds a page"
    );
    let target = container.path().join("rootfs");
    std::fs::create_dir(&target).unwrap();
    berth_image::snapshot::mount(&mounts, &target).unwrap();
    let _guard = MountGuard(target.clone());
    assert!(target.join("l0").is_file() && target.join("l59").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_image_both_succeed() {
    let reg = Registry::start();
    let r = publish(
        &reg,
        "twice",
        &[
            Layer::busybox().unwrap(),
            Layer::new().random_file("f", 2 << 20),
        ],
    );
    let root = tempfile::tempdir().unwrap();
    let store = open_store(root.path());
    let (a, b) = tokio::join!(pull(&store, &r), pull(&store, &r));
    assert_eq!(a.unwrap().id, b.unwrap().id);
    assert_eq!(snapshots(root.path()), 2);
    let leftovers = std::fs::read_dir(root.path().join("snapshots"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 2, "no temporary unpack dir left");
    assert_eq!(count(&root.path().join("content/ingest")), 0);
}
