//! Round trips from the `berth` binary to real peers: what `berth push`
//! sends, docker, skopeo and containerd's `ctr` pull back byte for byte.
//! (Images from peers that keel runs: `cli_peers_keel.rs`; registries that
//! are down or broken: `cli_bad_registries.rs`.)

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use berth_testkit::cli::assert_ran;
use berth_testkit::image::{raw_manifest, sha256, Layer, OciLayout};
use berth_testkit::peers::{check, Containerd, Dockerd};
use berth_testkit::registry::Registry;
use common::{pushed_digest, utf8, Berth};
use serde_json::Value;

/// A blob of berth's content store.
fn stored_blob(berth: &Berth, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let path = berth.data_root().join("content/blobs/sha256").join(hex);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The config and layer digests a manifest names.
fn referenced_blobs(manifest: &[u8]) -> BTreeSet<String> {
    let v: Value = serde_json::from_slice(manifest).expect("manifest json");
    let mut digests = BTreeSet::new();
    digests.insert(v["config"]["digest"].as_str().expect("config").to_owned());
    for layer in v["layers"].as_array().expect("layers") {
        digests.insert(layer["digest"].as_str().expect("layer digest").to_owned());
    }
    digests
}

/// An image that berth pulled from skopeo's push and pushed again under a
/// new name on the same registry.
struct Pushed {
    berth: Berth,
    /// `127.0.0.1:PORT/peers/pushed:2`
    reference: String,
    /// the manifest digest `berth push` printed
    digest: String,
}

/// skopeo pushes a two-layer busybox image (gzip layers) as `peers/src:1`;
/// berth pulls it, tags it `peers/pushed:2` and pushes that.
fn push_with_berth(registry: &Registry, work: &Path) -> Pushed {
    let dir = work.join("layout");
    let mut layout = OciLayout::create(&dir).expect("layout");
    let top = Layer::new()
        .dir("srv", 0o755)
        .file("srv/motd", b"pushed by berth\n", 0o644)
        .whiteout("bin/vi")
        .opaque("home")
        .file("home/new", b"", 0o644);
    let base = Layer::busybox().expect("busybox layer");
    let m = layout
        .image(
            &[base, top],
            &["/bin/sh"],
            "linux",
            common::host_arch(),
            None,
        )
        .expect("image");
    layout.tag("1", &m).expect("tag");
    let source = format!("{}/peers/src:1", registry.addr());
    berth_testkit::image::push(&dir, "1", &source).expect("skopeo push");

    let berth = Berth::new();
    berth.ok(&["pull", "-q", &source]);
    let reference = format!("{}/peers/pushed:2", registry.addr());
    berth.ok(&["tag", &source, &reference]);
    let out = berth.ok(&["push", &reference]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/peers/pushed]",
            registry.addr()
        )),
        "{out}"
    );
    let digest = pushed_digest(&out, "2");
    assert_eq!(
        digest, m.digest,
        "berth pushes the manifest bytes it pulled, so the digest is skopeo's"
    );
    let inspect: Value =
        serde_json::from_str(&berth.ok(&["image", "inspect", &reference])).expect("inspect");
    let mut repo_digests: Vec<&str> = inspect[0]["RepoDigests"]
        .as_array()
        .expect("RepoDigests")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    repo_digests.sort_unstable();
    assert_eq!(
        repo_digests,
        [
            format!("{}/peers/pushed@{digest}", registry.addr()),
            format!("{}/peers/src@{digest}", registry.addr()),
        ],
        "berth image inspect shows the pulled and the pushed digest"
    );
    Pushed {
        berth,
        reference,
        digest,
    }
}

#[test]
fn docker_and_skopeo_pull_what_berth_pushed() {
    if !berth_testkit::require_root() {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("tempdir");
    let pushed = push_with_berth(&registry, work.path());
    let manifest = stored_blob(&pushed.berth, &pushed.digest);

    // docker (20.10) treats 127.0.0.0/8 registries as insecure by default.
    let dockerd = Dockerd::start(&[]).expect("dockerd");
    let pulled = dockerd
        .docker()
        .args(["pull", &pushed.reference])
        .output()
        .expect("docker pull");
    assert_ran(&pulled, &format!("docker pull (log: {})", dockerd.log()));
    let repo_digests = check(dockerd.docker().args([
        "image",
        "inspect",
        "-f",
        "{{json .RepoDigests}}",
        &pushed.reference,
    ]));
    let repo_digests: Vec<String> = serde_json::from_str(&repo_digests).expect("RepoDigests");
    let repo = pushed.reference.rsplit_once(':').expect("a tag").0;
    assert_eq!(repo_digests, [format!("{repo}@{}", pushed.digest)]);
    let ran = check(dockerd.docker().args([
        "run",
        "--rm",
        "--network",
        "none",
        &pushed.reference,
        "sh",
        "-c",
        "echo ok; cat /srv/motd; ls /home; test -e /bin/vi || echo vi-gone",
    ]));
    assert_eq!(ran, "ok\npushed by berth\nnew\nvi-gone\n", "whiteouts hold");
    check(dockerd.docker().args(["rmi", &pushed.reference]));

    // What `berth save` writes, docker loads under the same image id and runs.
    let saved = work.path().join("saved.tar");
    pushed
        .berth
        .ok(&["save", "-o", utf8(&saved), &pushed.reference]);
    let loaded = check(dockerd.docker().args(["load", "-i", utf8(&saved)]));
    assert!(
        loaded.contains(&format!("Loaded image: {}", pushed.reference)),
        "{loaded}"
    );
    let docker_id =
        check(
            dockerd
                .docker()
                .args(["image", "inspect", "-f", "{{.Id}}", &pushed.reference]),
        );
    let berth_id = pushed
        .berth
        .ok(&["image", "inspect", "-f", "{{.Id}}", &pushed.reference]);
    assert_eq!(docker_id.trim(), berth_id.trim());
    let ran = check(dockerd.docker().args([
        "run",
        "--rm",
        "--network",
        "none",
        &pushed.reference,
        "cat",
        "/srv/motd",
    ]));
    assert_eq!(ran, "pushed by berth\n");
    check(dockerd.docker().args(["rmi", &pushed.reference]));
    drop(dockerd);

    // skopeo reads back the manifest bytes berth stored, and every blob.
    assert_eq!(
        raw_manifest(&pushed.reference, None).expect("skopeo inspect --raw"),
        manifest,
        "the registry serves berth's manifest blob byte for byte"
    );
    let copy = work.path().join("copy");
    check(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{}", pushed.reference))
            .arg(format!("dir:{}", copy.display())),
    );
    assert_eq!(
        std::fs::read(copy.join("manifest.json")).expect("manifest.json"),
        manifest
    );
    let mut copied = BTreeSet::new();
    for entry in std::fs::read_dir(&copy).expect("copy dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if name == "manifest.json" || name == "version" {
            continue;
        }
        let bytes = std::fs::read(&path).expect("blob");
        let digest = sha256(&bytes);
        assert_eq!(
            digest,
            format!("sha256:{name}"),
            "{name} hashes to its name"
        );
        assert_eq!(bytes, stored_blob(&pushed.berth, &digest), "{name}");
        copied.insert(digest);
    }
    assert_eq!(copied, referenced_blobs(&manifest));
}

#[test]
fn ctr_pulls_what_the_berth_cli_pushed() {
    if !berth_testkit::require_root() {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("tempdir");
    let pushed = push_with_berth(&registry, work.path());
    let manifest = stored_blob(&pushed.berth, &pushed.digest);

    let containerd = Containerd::start().expect("containerd");
    let ns = berth_testkit::unique_id("berthcli");
    let pulled = containerd
        .ctr()
        .args([
            "-n",
            &ns,
            "images",
            "pull",
            "--plain-http",
            &pushed.reference,
        ])
        .output()
        .expect("ctr pull");
    assert_ran(&pulled, &format!("ctr pull (log: {})", containerd.log()));
    let listed = check(containerd.ctr().args(["-n", &ns, "images", "ls"]));
    let row = listed
        .lines()
        .find(|l| l.starts_with(&pushed.reference))
        .unwrap_or_else(|| panic!("{} not listed: {listed}", pushed.reference));
    assert!(row.contains(&pushed.digest), "{row}");
    let mut blobs = referenced_blobs(&manifest);
    blobs.insert(pushed.digest.clone());
    for digest in blobs {
        let out = containerd
            .ctr()
            .args(["-n", &ns, "content", "get", &digest])
            .output()
            .expect("ctr content get");
        assert_ran(&out, "ctr content get");
        assert!(
            out.stdout == stored_blob(&pushed.berth, &digest),
            "{digest} differs between containerd and berth"
        );
    }
    check(
        containerd
            .ctr()
            .args(["-n", &ns, "images", "rm", &pushed.reference]),
    );

    // What `berth save` writes, `ctr images import` reads with the same digest.
    let saved = work.path().join("saved.tar");
    pushed
        .berth
        .ok(&["save", "-o", utf8(&saved), &pushed.reference]);
    check(
        containerd
            .ctr()
            .args(["-n", &ns, "images", "import", utf8(&saved)]),
    );
    let listed = check(containerd.ctr().args(["-n", &ns, "images", "ls"]));
    let row = listed
        .lines()
        .find(|l| l.starts_with(&pushed.reference))
        .unwrap_or_else(|| panic!("{} not imported: {listed}", pushed.reference));
    assert!(row.contains(&pushed.digest), "{row}");
    check(
        containerd
            .ctr()
            .args(["-n", &ns, "images", "rm", &pushed.reference]),
    );
}

#[test]
fn berth_pushes_the_host_manifest_of_a_multi_platform_image() {
    if !berth_testkit::require_root() {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("layout");
    let mut layout = OciLayout::create(&dir).expect("layout");
    let base = Layer::busybox().expect("busybox");
    let host = layout
        .image(
            std::slice::from_ref(&base),
            &["/bin/sh"],
            "linux",
            common::host_arch(),
            None,
        )
        .expect("host image");
    let other = layout
        .image(
            &[base, Layer::new().file("etc/motd", b"other\n", 0o644)],
            &["/bin/sh"],
            "linux",
            "s390x",
            None,
        )
        .expect("other image");
    let index = layout.index(&[host.clone(), other]).expect("index");
    assert_ne!(index.digest, host.digest);
    layout.tag("multi", &index).expect("tag");
    let source = format!("{}/peers/multi:1", registry.addr());
    berth_testkit::image::push(&dir, "multi", &source).expect("skopeo push");

    let berth = Berth::new();
    berth.ok(&["pull", "-q", &source]);
    let target = format!("{}/peers/single:1", registry.addr());
    berth.ok(&["tag", &source, &target]);
    let out = berth.ok(&["push", &target]);
    assert!(
        out.contains(&format!("1: digest: {} ", host.digest)),
        "berth pulled this machine's manifest, and pushes it (not the index), as docker does: {out}"
    );
    assert_eq!(
        raw_manifest(&target, None).expect("skopeo inspect --raw"),
        stored_blob(&berth, &host.digest)
    );

    let dockerd = Dockerd::start(&[]).expect("dockerd");
    let pulled = dockerd
        .docker()
        .args(["pull", &target])
        .output()
        .expect("docker pull");
    assert_ran(&pulled, &format!("docker pull (log: {})", dockerd.log()));
    let repo_digests =
        check(
            dockerd
                .docker()
                .args(["image", "inspect", "-f", "{{json .RepoDigests}}", &target]),
        );
    let repo_digests: Vec<String> = serde_json::from_str(&repo_digests).expect("RepoDigests");
    assert_eq!(
        repo_digests,
        [format!("{}/peers/single@{}", registry.addr(), host.digest)]
    );
    let ran =
        check(
            dockerd
                .docker()
                .args(["run", "--rm", "--network", "none", &target, "echo", "ok"]),
        );
    assert_eq!(ran, "ok\n");
}

#[test]
fn docker_pulls_what_berth_imported_and_pushed_behind_basic_auth() {
    if !berth_testkit::require_root() {
        return;
    }
    let registry = Registry::start_with_htpasswd("pusher", "s3cret");
    let work = tempfile::tempdir().expect("tempdir");
    let rootfs = work.path().join("rootfs.tar");
    let tar = Layer::busybox().expect("busybox").tar().expect("tar");
    std::fs::write(&rootfs, tar).expect("rootfs tar");
    let reference = format!("{}/auth/imported:1", registry.addr());
    let berth = Berth::new();
    let id = berth.ok(&[
        "import",
        "-c",
        r#"CMD ["/bin/echo", "imported by berth"]"#,
        utf8(&rootfs),
        &reference,
    ]);

    let err = berth.fails(&["push", &reference]);
    assert!(
        err.starts_with("berth: push access denied for"),
        "pushing without credentials: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    let login = berth.ok(&["login", "-u", "pusher", "-p", "s3cret", registry.addr()]);
    assert!(login.contains("Login Succeeded"), "{login}");
    let out = berth.ok(&["push", &reference]);
    let digest = pushed_digest(&out, "1");

    let dockerd = Dockerd::start(&[]).expect("dockerd");
    let docker_config = work.path().join("docker-config");
    let docker = || {
        let mut c = dockerd.docker();
        c.env("DOCKER_CONFIG", &docker_config);
        c
    };
    check(docker().args(["login", "-u", "pusher", "-p", "s3cret", registry.addr()]));
    let pulled = docker()
        .args(["pull", &reference])
        .output()
        .expect("docker pull");
    assert_ran(&pulled, &format!("docker pull (log: {})", dockerd.log()));
    let inspect = check(docker().args([
        "image",
        "inspect",
        "-f",
        "{{.Id}} {{json .RepoDigests}}",
        &reference,
    ]));
    assert_eq!(
        inspect.trim(),
        format!(
            "{} [\"{}/auth/imported@{digest}\"]",
            id.trim(),
            registry.addr()
        ),
        "docker sees berth's image id and pushed digest"
    );
    let ran = check(docker().args(["run", "--rm", "--network", "none", &reference]));
    assert_eq!(ran, "imported by berth\n");
}
