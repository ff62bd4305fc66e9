//! End-to-end tests of the `berth` binary: a local registry, images pushed
//! with skopeo, `berth pull/images/inspect/tag/rmi/save/load`, and
//! `berth bundle` run with runc (and keel when it has been built).

mod common;

use berth_testkit::cli::assert_ran;
use berth_testkit::image::{Layer, OciLayout};
use berth_testkit::registry::Registry;
use common::{image, Berth, Bundles, Runc};
use serde_json::{json, Value};

/// Docker's 14 default capabilities as a /proc/self/status mask.
const DOCKER_DEFAULT_CAPS: &str = "00000000a80425fb";

/// A registry holding a two-layer busybox image with a config exercising
/// the bundle rules as `test:1`, the scratch directory it was built in, and
/// its reference.
fn registry_with_test_image() -> (Registry, tempfile::TempDir, String) {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("layout");
    let mut layout = OciLayout::create(&dir).expect("layout");
    let base = Layer::busybox().expect("busybox layer");
    let top = Layer::new()
        .dir("srv", 0o755)
        .file("srv/hello.txt", b"hello from the image\n", 0o644)
        .whiteout("etc/hostname");
    let config = json!({
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["echo from-cmd; id; pwd; echo GREETING=$GREETING HOME=$HOME; hostname; \
                 cat /etc/hostname; grep CapEff /proc/self/status"],
        "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello"],
        "User": "user",
        "WorkingDir": "/srv",
        "ExposedPorts": {"8080/tcp": {}},
        "Labels": {"org.example.test": "yes"},
        "StopSignal": "SIGQUIT",
    });
    image(&mut layout, &[base, top], config, "1");
    let reference = format!("{}/test:1", registry.addr());
    berth_testkit::image::push(&dir, "1", &reference).expect("skopeo push");
    (registry, work, reference)
}

#[test]
fn pull_list_inspect_tag_and_remove() {
    if !berth_testkit::require_root() {
        return;
    }
    let (registry, _work, reference) = registry_with_test_image();
    let berth = Berth::new();

    let pulled = berth.ok(&["pull", &reference]);
    assert!(pulled.contains("1: Pulling from test"), "{pulled}");
    assert!(pulled.contains("Pull complete"), "{pulled}");
    assert!(pulled.contains("Digest: sha256:"), "{pulled}");
    assert!(
        pulled.contains(&format!("Status: Downloaded newer image for {reference}")),
        "{pulled}"
    );
    assert!(pulled.trim_end().ends_with(&reference), "{pulled}");
    // On a terminal: one progress bar per layer.
    let fresh = Berth::new();
    let line = format!(
        "{} --data-root {} --config /nonexistent pull {reference}",
        env!("CARGO_BIN_EXE_berth"),
        fresh.data_root().display()
    );
    let tty = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .expect("script");
    let shown = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "{shown}");
    // (the Downloading frame may be skipped by the redraw rate limit on a fast pull)
    assert!(shown.contains(": Pull complete"), "{shown}");
    assert!(
        shown.contains("\nDigest: sha256:"),
        "the summary starts on its own line: {shown:?}"
    );

    let again = berth.ok(&["pull", "-q", &reference]);
    assert_eq!(again.trim(), reference);

    let listing = berth.ok(&["images"]);
    let mut lines = listing.lines();
    let header: Vec<&str> = lines
        .next()
        .expect("header")
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(header, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    let row = lines.next().expect("a row");
    assert!(
        row.starts_with(&format!("{}/test", registry.addr())),
        "{listing}"
    );
    assert!(row.contains(" 1 "), "{listing}");

    let json_line = berth.ok(&["images", "--format", "json"]);
    let entry: Value =
        serde_json::from_str(json_line.lines().next().expect("json line")).expect("json");
    assert_eq!(entry["Tag"], "1");
    assert_eq!(entry["Repository"], format!("{}/test", registry.addr()));
    let id = entry["ID"].as_str().expect("ID").to_owned();
    assert_eq!(id.len(), 12);
    assert_eq!(berth.ok(&["images", "-q"]).trim(), id);
    let templated = berth.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(templated.trim(), reference);
    let filtered = berth.ok(&["images", &format!("{}/test", registry.addr())]);
    assert_eq!(
        filtered.lines().count(),
        2,
        "header and one row: {filtered}"
    );
    let filtered = berth.ok(&["images", "not-there"]);
    assert_eq!(filtered.lines().count(), 1, "header only: {filtered}");

    let inspect: Value =
        serde_json::from_str(&berth.ok(&["image", "inspect", &reference])).expect("inspect json");
    let doc = &inspect[0];
    assert!(doc["Id"]
        .as_str()
        .expect("Id")
        .starts_with(&format!("sha256:{id}")));
    assert_eq!(doc["RepoTags"], json!([reference]));
    assert_eq!(doc["RepoDigests"].as_array().map(Vec::len), Some(1));
    assert_eq!(doc["Config"]["User"], "user");
    assert_eq!(doc["Config"]["WorkingDir"], "/srv");
    assert_eq!(doc["Config"]["Entrypoint"], json!(["/bin/sh", "-c"]));
    assert_eq!(doc["Config"]["ExposedPorts"], json!({"8080/tcp": {}}));
    assert_eq!(doc["Os"], "linux");
    assert_eq!(doc["RootFS"]["Type"], "layers");
    assert_eq!(doc["RootFS"]["Layers"].as_array().map(Vec::len), Some(2));
    assert!(
        doc["Size"].as_u64().expect("Size") > 500_000,
        "busybox is in the size"
    );

    let alias = format!("{}/alias:v2", registry.addr());
    berth.ok(&["tag", &reference, &alias]);
    let names = berth.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert_eq!(names.lines().count(), 2, "{names}");
    assert!(names.lines().all(|l| l.ends_with(&id)), "{names}");
    let inspect: Value =
        serde_json::from_str(&berth.ok(&["image", "inspect", &id])).expect("inspect by id");
    assert_eq!(inspect[0]["RepoTags"].as_array().map(Vec::len), Some(2));

    let untag = berth.ok(&["rmi", &alias]);
    assert_eq!(untag.trim(), format!("Untagged: {alias}"));
    let removed = berth.ok(&["image", "rm", &reference]);
    assert!(
        removed.contains(&format!("Untagged: {reference}")),
        "{removed}"
    );
    assert!(removed.contains("Deleted: sha256:"), "{removed}");
    assert_eq!(berth.ok(&["images", "-q"]).trim(), "");
    let err = berth.fails(&["image", "inspect", &reference]);
    assert!(err.contains("No such image"), "{err}");
}

#[test]
fn bundle_applies_the_image_config_and_runs_with_runc() {
    if !berth_testkit::require_root() {
        return;
    }
    let (_registry, work, reference) = registry_with_test_image();
    let berth = Berth::new();
    berth.ok(&["pull", "-q", &reference]);
    let mut bundles = Bundles::default();
    let mut runc = Runc::new();

    // The image's own Entrypoint, Cmd, User, WorkingDir and Env.
    let dir = work.path().join("bundle-default");
    bundles.track(&dir);
    let id = berth
        .ok(&["bundle", &reference, dir.to_str().expect("utf-8")])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "the bundle prints its container id: {id}");
    let config: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).expect("config.json"))
            .expect("json");
    assert_eq!(
        config["annotations"]["org.opencontainers.image.stopSignal"],
        "SIGQUIT"
    );
    assert_eq!(
        config["annotations"]["org.opencontainers.image.exposedPorts"],
        "8080/tcp"
    );
    assert_eq!(config["annotations"]["org.example.test"], "yes");
    assert_eq!(config["process"]["user"]["additionalGids"], json!([10]));
    let out = assert_ran(&runc.run(&dir), "runc");
    assert!(out.contains("from-cmd"), "{out}");
    assert!(out.contains("uid=1000(user) gid=1000(user)"), "{out}");
    assert!(
        out.contains("10(wheel)"),
        "supplementary group from /etc/group: {out}"
    );
    assert!(out.lines().any(|l| l == "/srv"), "WorkingDir: {out}");
    assert!(out.contains("GREETING=hello HOME=/home/user"), "{out}");
    assert!(
        out.lines().any(|l| l == &id[..12]),
        "hostname is the short id: {out}"
    );
    assert!(
        !out.contains("busybox\n"),
        "/etc/hostname was whited out by the top layer: {out}"
    );
    let err = berth.fails(&["bundle", &reference, dir.to_str().expect("utf-8")]);
    assert!(err.contains("not empty"), "{err}");
    berth.ok(&["unbundle", dir.to_str().expect("utf-8")]);
    assert!(!dir.exists(), "unbundle removes the directory");

    // Overrides: user, working directory, environment, command.
    let dir = work.path().join("bundle-override");
    bundles.track(&dir);
    berth.ok(&[
        "bundle",
        "-u",
        "0",
        "-w",
        "/tmp",
        "-e",
        "GREETING=bye",
        "-h",
        "web",
        &reference,
        dir.to_str().expect("utf-8"),
        "echo over; id -u; pwd; echo GREETING=$GREETING; hostname; grep CapEff /proc/self/status; \
         echo data > /srv/new && cat /srv/new",
    ]);
    let out = assert_ran(&runc.run(&dir), "runc");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..5],
        ["over", "0", "/tmp", "GREETING=bye", "web"],
        "{out}"
    );
    assert!(
        out.contains(&format!("CapEff:\t{DOCKER_DEFAULT_CAPS}")),
        "Docker's 14 capabilities: {out}"
    );
    assert!(out.contains("data"), "the rootfs is writable: {out}");
    assert!(
        dir.join("upper/srv/new").exists(),
        "writes land in the bundle's upper dir"
    );
    {
        let mut keel = common::keel();
        let out = assert_ran(&keel.run(&dir), "keel");
        assert!(
            out.starts_with("over\n0\n/tmp\nGREETING=bye\nweb\n"),
            "keel: {out}"
        );
    }

    // --entrypoint replaces the Entrypoint and drops the image's Cmd.
    let dir = work.path().join("bundle-entrypoint");
    bundles.track(&dir);
    berth.ok(&[
        "bundle",
        "--entrypoint",
        "/bin/echo",
        &reference,
        dir.to_str().expect("utf-8"),
        "a",
        "b",
    ]);
    let out = assert_ran(&runc.run(&dir), "runc");
    assert_eq!(out, "a b\n");
    let dir = work.path().join("bundle-entrypoint-only");
    bundles.track(&dir);
    berth.ok(&[
        "bundle",
        "--entrypoint",
        "/bin/pwd",
        &reference,
        dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(assert_ran(&runc.run(&dir), "runc"), "/srv\n");

    // Unknown users are refused before anything is left behind.
    let dir = work.path().join("bundle-bad-user");
    let err = berth.fails(&[
        "bundle",
        "-u",
        "nobody-here",
        &reference,
        dir.to_str().expect("utf-8"),
    ]);
    assert!(err.contains("unable to find user nobody-here"), "{err}");
    assert!(!dir.exists(), "a failed bundle is cleaned up");
}

#[test]
fn save_and_load_round_trip() {
    if !berth_testkit::require_root() {
        return;
    }
    let (registry, work, reference) = registry_with_test_image();
    let berth = Berth::new();
    berth.ok(&["pull", "-q", &reference]);
    let before: Value =
        serde_json::from_str(&berth.ok(&["image", "inspect", &reference])).expect("inspect");

    let archive = work.path().join("saved.tar");
    berth.ok(&["save", "-o", archive.to_str().expect("utf-8"), &reference]);
    assert!(std::fs::metadata(&archive).expect("archive").len() > 500_000);

    let other = Berth::new();
    let loaded = other.ok(&["load", "-i", archive.to_str().expect("utf-8")]);
    assert!(
        loaded.contains(&format!("Loaded image: {reference}")),
        "{loaded}"
    );
    let after: Value =
        serde_json::from_str(&other.ok(&["image", "inspect", &reference])).expect("inspect");
    assert_eq!(after[0]["Id"], before[0]["Id"]);
    assert_eq!(after[0]["RootFS"], before[0]["RootFS"]);
    assert_eq!(after[0]["Config"], before[0]["Config"]);
    assert_eq!(
        other.ok(&["load", "-q", "-i", archive.to_str().expect("utf-8")]),
        ""
    );

    // What was loaded pushes back under a new name and pulls into a third store.
    let copy = format!("{}/copy:2", registry.addr());
    other.ok(&["tag", &reference, &copy]);
    let pushed = other.ok(&["push", &copy]);
    assert!(
        pushed.contains(&format!(
            "The push refers to repository [{}/copy]",
            registry.addr()
        )),
        "{pushed}"
    );
    assert!(pushed.contains("2: digest: sha256:"), "{pushed}");
    let third = Berth::new();
    third.ok(&["pull", "-q", &copy]);
    let pulled: Value =
        serde_json::from_str(&third.ok(&["image", "inspect", &copy])).expect("inspect");
    assert_eq!(pulled[0]["Id"], before[0]["Id"]);
}

#[test]
fn bad_references_and_unknown_images_are_clear_errors() {
    let berth = Berth::new();
    let version = berth.ok(&["-v"]);
    assert!(version.starts_with("berth "), "{version}");
    let cases: &[(&[&str], &str)] = &[
        (&["pull", "Not/Valid:ref"], "invalid reference format"),
        (&["pull", "busybox:bad tag"], "invalid reference format"),
        (
            &["tag", "nothing-here", "x:1"],
            "No such image: nothing-here",
        ),
        (
            &["image", "inspect", "nothing-here"],
            "No such image: nothing-here",
        ),
        (&["rmi", "nothing-here"], "No such image: nothing-here"),
        (
            &["bundle", "nothing-here", "/nonexistent/bundle"],
            "No such image: nothing-here",
        ),
        (&["unbundle", "/"], "is not a bundle created by berth"),
        (
            &["bundle", "--network", "bridge", "x", "/tmp/x"],
            "not supported",
        ),
    ];
    for (args, message) in cases {
        let err = berth.fails(args);
        assert!(err.starts_with("berth: "), "berth {args:?}: {err}");
        assert!(
            err.contains(message),
            "berth {args:?}: expected {message:?} in {err:?}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn import_a_rootfs_run_it_and_prune() {
    if !berth_testkit::require_root() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let rootfs_tar = work.path().join("rootfs.tar");
    std::fs::write(
        &rootfs_tar,
        Layer::busybox().expect("busybox").tar().expect("tar"),
    )
    .expect("write tar");
    let berth = Berth::new();
    let id = berth.ok(&[
        "import",
        "-c",
        r#"CMD ["/bin/echo", "imported"]"#,
        "-c",
        "WORKDIR /tmp",
        rootfs_tar.to_str().expect("utf-8"),
        "imported:1",
    ]);
    assert!(
        id.trim().starts_with("sha256:"),
        "import prints the image id: {id}"
    );
    let inspect: Value =
        serde_json::from_str(&berth.ok(&["image", "inspect", "imported:1"])).expect("inspect");
    assert_eq!(
        inspect[0]["Config"]["Cmd"],
        json!(["/bin/echo", "imported"])
    );
    assert_eq!(inspect[0]["Id"].as_str(), Some(id.trim()));

    let mut bundles = Bundles::default();
    let mut runc = Runc::new();
    let dir = work.path().join("bundle");
    bundles.track(&dir);
    berth.ok(&["bundle", "imported:1", dir.to_str().expect("utf-8")]);
    assert_eq!(assert_ran(&runc.run(&dir), "runc"), "imported\n");

    // A mounted bundle keeps its image: neither rmi nor prune deletes it.
    let err = berth.fails(&["rmi", "-f", "imported:1"]);
    assert!(err.contains("is being used by bundle"), "{err}");
    let kept = berth.ok(&["image", "prune", "-a", "-f"]);
    assert!(!kept.contains("Untagged"), "{kept}");
    assert_eq!(assert_ran(&runc.run(&dir), "runc"), "imported\n");
    berth.ok(&["unbundle", dir.to_str().expect("utf-8")]);

    let pruned = berth.ok(&["image", "prune", "-a", "-f"]);
    assert!(pruned.contains("Untagged: imported:1"), "{pruned}");
    assert!(pruned.contains("Total reclaimed space:"), "{pruned}");
    assert_eq!(berth.ok(&["images", "-q"]).trim(), "");
}

#[test]
fn pull_picks_the_platform_from_an_index() {
    if !berth_testkit::require_root() {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("layout");
    let mut layout = OciLayout::create(&dir).expect("layout");
    let small = || Layer::new().file("etc/motd", b"hi\n", 0o644);
    let host = layout
        .image(&[small()], &["sh"], "linux", common::host_arch(), None)
        .expect("host image");
    let other_arch = if common::host_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    let other = layout
        .image(&[small()], &["sh"], "linux", other_arch, None)
        .expect("other image");
    let index = layout.index(&[host, other]).expect("index");
    layout.tag("multi", &index).expect("tag");
    let reference = format!("{}/multi:1", registry.addr());
    berth_testkit::image::push(&dir, "multi", &reference).expect("push");

    let berth = Berth::new();
    berth.ok(&[
        "pull",
        "-q",
        "--platform",
        &format!("linux/{other_arch}"),
        &reference,
    ]);
    let arch = berth.ok(&["image", "inspect", "-f", "{{.Architecture}}", &reference]);
    assert_eq!(arch.trim(), other_arch);
    let inspect: Value =
        serde_json::from_str(&berth.ok(&["image", "inspect", &reference])).expect("inspect");
    let repo_digest = inspect[0]["RepoDigests"][0]
        .as_str()
        .expect("RepoDigests")
        .to_owned();
    assert!(
        repo_digest.ends_with(&index.digest),
        "RepoDigest is the index digest: {repo_digest}"
    );

    let native = Berth::new();
    native.ok(&["pull", "-q", &reference]);
    let arch = native.ok(&["image", "inspect", "-f", "{{.Architecture}}", &reference]);
    assert_eq!(arch.trim(), common::host_arch());
    let err = native.fails(&["pull", "--platform", "linux/s390x", &reference]);
    assert!(err.starts_with("berth: "), "{err}");
    let err = native.fails(&["pull", "--platform", "linux/", &reference]);
    assert!(err.contains("invalid platform"), "{err}");
}
