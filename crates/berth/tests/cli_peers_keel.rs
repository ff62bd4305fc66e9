//! Round trips from real peers to keel through the `berth` binary: what
//! skopeo pushes, and what docker makes, saves and pushes, berth pulls or
//! loads, bundles and keel runs; and back from berth to docker.

mod common;

use berth_testkit::cli::assert_ran;
use berth_testkit::image::{Layer, OciLayout};
use berth_testkit::peers::{busybox_docker_archive, check, Dockerd};
use berth_testkit::registry::Registry;
use common::{image, pushed_digest, utf8, Berth, Bundles};
use serde_json::{json, Value};

#[test]
fn keel_runs_what_skopeo_pushed_and_berth_pulled() {
    if !berth_testkit::require_root() {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("layout");
    let mut layout = OciLayout::create(&dir).expect("layout");
    let top = Layer::new()
        .dir("work", 0o777)
        .file(
            "work/entry.sh",
            b"echo entrypoint-ran \"$@\"; echo GREETING=$GREETING; id -u; id -g; pwd; \
              ls /home; test -e /bin/vi || echo vi-gone\n",
            0o755,
        )
        .whiteout("bin/vi")
        .opaque("home")
        .file("home/new", b"", 0o644);
    let config = json!({
        "Entrypoint": ["/bin/sh", "/work/entry.sh"],
        "Cmd": ["from-cmd"],
        "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=ahoy"],
        "User": "user",
        "WorkingDir": "/work",
    });
    image(
        &mut layout,
        &[Layer::busybox().expect("busybox"), top],
        config,
        "1",
    );
    let reference = format!("{}/peers/keel:1", registry.addr());
    berth_testkit::image::push(&dir, "1", &reference).expect("skopeo push");
    let berth = Berth::new();
    berth.ok(&["pull", "-q", &reference]);

    let mut bundles = Bundles::default();
    let mut keel = common::keel();
    let bundle = work.path().join("bundle");
    bundles.track(&bundle);
    berth.ok(&["bundle", &reference, utf8(&bundle)]);
    let id = keel.new_id();
    let out = assert_ran(&keel.run_keep(&bundle, &id), "keel run");
    assert_eq!(
        out,
        "entrypoint-ran from-cmd\nGREETING=ahoy\n1000\n1000\n/work\nnew\nvi-gone\n"
    );
    let state: Value = serde_json::from_str(&assert_ran(
        &keel
            .cmd()
            .args(["state", &id])
            .output()
            .expect("keel state"),
        "keel state",
    ))
    .expect("state json");
    assert_eq!(state["status"], "stopped");
    assert_ran(
        &keel
            .cmd()
            .args(["delete", &id])
            .output()
            .expect("keel delete"),
        "keel delete",
    );
    berth.ok(&["unbundle", utf8(&bundle)]);
    assert!(!bundle.exists(), "unbundle removes the bundle");
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .expect("mountinfo")
            .contains(utf8(&bundle)),
        "nothing stays mounted"
    );
}

#[test]
fn docker_images_go_through_berth_and_back() {
    if !berth_testkit::require_root() {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("tempdir");
    let archive = busybox_docker_archive(work.path(), "docker.io/library/peerbox:base")
        .expect("busybox docker-archive");
    let dockerd = Dockerd::start(&[]).expect("dockerd");
    let docker = || dockerd.docker();
    check(docker().args(["load", "-i", utf8(&archive)]));
    // A layer and a config that docker itself made.
    check(docker().args([
        "run",
        "--network",
        "none",
        "--name",
        "maker",
        "peerbox:base",
        "sh",
        "-c",
        "echo made-by-docker > /made && mkdir /data",
    ]));
    check(docker().args([
        "commit",
        "-c",
        r#"CMD ["sh", "-c", "cat /made; pwd; echo $FROM"]"#,
        "-c",
        "WORKDIR /data",
        "-c",
        "ENV FROM=docker",
        "maker",
        "peerbox:committed",
    ]));
    check(docker().args(["rm", "maker"]));
    let docker_id =
        check(docker().args(["image", "inspect", "-f", "{{.Id}}", "peerbox:committed"]))
            .trim()
            .to_owned();

    // docker save → berth load: listed under docker's image id, runs with keel.
    let saved = work.path().join("saved.tar");
    check(docker().args(["save", "-o", utf8(&saved), "peerbox:committed"]));
    let berth = Berth::new();
    let loaded = berth.ok(&["load", "-i", utf8(&saved)]);
    assert!(
        loaded.contains("Loaded image: peerbox:committed"),
        "{loaded}"
    );
    let listed = berth.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert!(
        listed
            .lines()
            .any(|l| l == format!("peerbox:committed {}", &docker_id[7..19])),
        "berth images lists it under docker's image id {docker_id}: {listed}"
    );
    let mut bundles = Bundles::default();
    let mut keel = common::keel();
    let bundle = work.path().join("bundle");
    bundles.track(&bundle);
    berth.ok(&["bundle", "peerbox:committed", utf8(&bundle)]);
    let out = assert_ran(&keel.run(&bundle), "keel run");
    assert_eq!(out, "made-by-docker\n/data\ndocker\n");
    berth.ok(&["unbundle", utf8(&bundle)]);

    // docker push → berth pull: the same image id.
    let by_docker = format!("{}/peers/by-docker:1", registry.addr());
    check(docker().args(["tag", "peerbox:committed", &by_docker]));
    check(docker().args(["push", &by_docker]));
    let other = Berth::new();
    other.ok(&["pull", "-q", &by_docker]);
    let id = other.ok(&["image", "inspect", "-f", "{{.Id}}", &by_docker]);
    assert_eq!(id.trim(), docker_id);

    // What berth loaded from docker's archive, berth pushes and docker pulls.
    let back = format!("{}/peers/back:1", registry.addr());
    berth.ok(&["tag", "peerbox:committed", &back]);
    let pushed = berth.ok(&["push", &back]);
    assert!(pushed.contains("1: digest: sha256:"), "{pushed}");
    check(docker().args(["rmi", "peerbox:committed", &by_docker]));
    let pulled = docker()
        .args(["pull", &back])
        .output()
        .expect("docker pull");
    assert_ran(&pulled, &format!("docker pull (log: {})", dockerd.log()));
    let id = check(docker().args(["image", "inspect", "-f", "{{.Id}}", &back]));
    assert_eq!(id.trim(), docker_id);
    let digest = pushed_digest(&pushed, "1");
    let repo_digests =
        check(docker().args(["image", "inspect", "-f", "{{json .RepoDigests}}", &back]));
    assert!(
        repo_digests.contains(&format!("{}/peers/back@{digest}", registry.addr())),
        "{repo_digests}"
    );
    let ran = check(docker().args(["run", "--rm", "--network", "none", &back]));
    assert_eq!(ran, "made-by-docker\n/data\ndocker\n");
}
