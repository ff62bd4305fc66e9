//! `berth login` / `logout` against a registry with htpasswd Basic auth.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use berth_testkit::image::{Layer, OciLayout};
use berth_testkit::registry::Registry;
use common::{image, Berth};
use serde_json::{json, Value};

fn login(berth: &Berth, server: &str, user: &str, password: &str) -> std::process::Output {
    let mut child = berth
        .cmd(&["login", "-u", user, "--password-stdin", server])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth login");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("password");
    child.wait_with_output().expect("berth login output")
}

#[test]
fn login_pull_logout_with_basic_auth() {
    if !berth_testkit::require_root() {
        return;
    }
    let registry = Registry::start_with_htpasswd("tester", "s3cret");
    let work = tempfile::tempdir().expect("tempdir");
    let layout_dir = work.path().join("layout");
    let mut layout = OciLayout::create(&layout_dir).expect("layout");
    image(
        &mut layout,
        &[Layer::busybox().expect("busybox")],
        json!({"Cmd": ["sh"]}),
        "1",
    );
    let reference = format!("{}/private:1", registry.addr());
    let pushed = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds",
            "tester:s3cret",
        ])
        .arg(format!("oci:{}:1", layout_dir.display()))
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo");
    assert!(
        pushed.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );

    let berth = Berth::new();
    let err = berth.fails(&["pull", "-q", &reference]);
    assert!(err.starts_with("berth: "), "{err}");

    let wrong = login(&berth, registry.addr(), "tester", "nope");
    assert!(!wrong.status.success(), "a wrong password is refused");
    let ok = login(&berth, registry.addr(), "tester", "s3cret");
    assert!(
        ok.status.success(),
        "login: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("Login Succeeded"));
    let config: Value = serde_json::from_slice(
        &std::fs::read(berth.root.path().join("docker/config.json")).expect("docker config.json"),
    )
    .expect("json");
    assert!(
        config["auths"][registry.addr()]["auth"].is_string(),
        "{config}"
    );

    assert_eq!(berth.ok(&["pull", "-q", &reference]).trim(), reference);

    let out = berth.ok(&["logout", registry.addr()]);
    assert_eq!(
        out.trim(),
        format!("Removing login credentials for {}", registry.addr())
    );
    let out = berth.ok(&["logout", registry.addr()]);
    assert_eq!(out.trim(), format!("Not logged in to {}", registry.addr()));
    berth.ok(&["rmi", &reference]);
    berth.fails(&["pull", "-q", &reference]);
}
