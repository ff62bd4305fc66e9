//! Image config → OCI runtime spec.
//!
//! [`defaults`] holds the spec Docker starts every container from,
//! [`seccomp`] its default seccomp profile, [`caps`] the `--cap-add` /
//! `--cap-drop` rules, [`user`] `--user` resolution through the image's
//! passwd and group files, and [`process`] the Entrypoint/Cmd/Env/WorkingDir
//! rules. [`from_image`] puts them together.

pub mod caps;
pub mod defaults;
pub mod process;
pub mod seccomp;
pub mod user;

use std::collections::HashMap;
use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{LinuxMemory, LinuxPids, Spec, User};

use crate::bundle::{BundleOptions, NetworkMode};

/// Annotation holding the image's exposed ports (`80/tcp,443/tcp`), as the
/// OCI image spec's conversion rules name it.
pub const ANNOTATION_EXPOSED_PORTS: &str = "org.opencontainers.image.exposedPorts";
/// Annotation holding the image's stop signal.
pub const ANNOTATION_STOP_SIGNAL: &str = "org.opencontainers.image.stopSignal";
/// Annotation holding the image's volumes (comma-separated paths). Berth
/// does not mount them yet: writes go to the bundle's upper directory.
pub const ANNOTATION_VOLUMES: &str = "io.berth.image.volumes";

/// Errors turning an image config into a runtime spec.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// neither the image nor the options name a command
    #[error("no command specified: the image has no Entrypoint or Cmd and none was given")]
    NoCommand,
    /// `-w` or the image's WorkingDir is relative
    #[error("the working directory '{0}' is invalid, it needs to be an absolute path")]
    RelativeWorkdir(String),
    /// `--cap-add`/`--cap-drop` names something that is not a capability
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),
    /// the user could not be resolved
    #[error(transparent)]
    User(#[from] user::Error),
}

/// The complete spec for a container of an image: Docker's defaults, then
/// the image config (`config`), then the options; `exec_user` is the
/// already resolved `--user`/image User and `hostname` the container's.
pub fn from_image(
    config: &ImageConfiguration,
    opts: &BundleOptions,
    exec_user: &user::ExecUser,
    hostname: &str,
) -> Result<Spec, Error> {
    let image = config.config().clone().unwrap_or_default();
    let mut spec = defaults::spec(hostname, defaults::host_is_cgroup_v2());
    let caps = caps::resolve(&opts.cap_add, &opts.cap_drop)?;

    let mut process = spec.process().clone().unwrap_or_default();
    let empty = Vec::new();
    process
        .set_args(Some(process::args(
            image.entrypoint().as_ref().unwrap_or(&empty),
            image.cmd().as_ref().unwrap_or(&empty),
            opts.entrypoint.as_deref(),
            &opts.cmd,
        )?))
        .set_env(Some(process::env(
            hostname,
            opts.tty,
            image.env().as_ref().unwrap_or(&empty),
            &opts.env,
            &exec_user.home,
        )))
        .set_cwd(PathBuf::from(process::cwd(
            image.working_dir().as_deref(),
            opts.workdir.as_deref(),
        )?))
        .set_terminal(Some(opts.tty))
        .set_user(oci_user(exec_user))
        .set_capabilities(Some(defaults::capability_sets(&caps)));
    spec.set_process(Some(process));

    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(opts.read_only));
    }
    if let Some(linux) = spec.linux_mut() {
        let cgroup_ns = defaults::host_is_cgroup_v2();
        linux.set_namespaces(Some(defaults::namespaces(
            cgroup_ns,
            opts.network != NetworkMode::Host,
        )));
        linux.set_seccomp(Some(seccomp::profile(&caps, seccomp::Family::host())));
        if let Some(resources) = linux.resources_mut() {
            if let Some(limit) = opts.memory {
                let mut memory = LinuxMemory::default();
                memory.set_limit(Some(limit));
                resources.set_memory(Some(memory));
            }
            if let Some(limit) = opts.pids_limit {
                let mut pids = LinuxPids::default();
                pids.set_limit(limit);
                resources.set_pids(Some(pids));
            }
        }
    }
    spec.set_annotations(Some(annotations(config)));
    Ok(spec)
}

fn oci_user(exec_user: &user::ExecUser) -> User {
    let mut user = User::default();
    user.set_uid(exec_user.uid)
        .set_gid(exec_user.gid)
        .set_additional_gids(
            (!exec_user.additional_gids.is_empty()).then(|| exec_user.additional_gids.clone()),
        );
    user
}

/// Image metadata a runtime does not act on, kept as annotations: labels
/// (under their own keys), exposed ports, volumes, stop signal, and the
/// platform and creation fields the OCI conversion rules list.
pub fn annotations(config: &ImageConfiguration) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let image = config.config().clone().unwrap_or_default();
    if let Some(labels) = image.labels() {
        out.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut put = |key: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            out.insert(key.to_owned(), value);
        }
    };
    let joined = |list: &Option<Vec<String>>| {
        list.as_ref().map(|items| {
            let mut items = items.clone();
            items.sort();
            items.join(",")
        })
    };
    put(ANNOTATION_EXPOSED_PORTS, joined(image.exposed_ports()));
    put(ANNOTATION_VOLUMES, joined(image.volumes()));
    put(ANNOTATION_STOP_SIGNAL, image.stop_signal().clone());
    put("org.opencontainers.image.os", Some(config.os().to_string()));
    put(
        "org.opencontainers.image.architecture",
        Some(config.architecture().to_string()),
    );
    put("org.opencontainers.image.variant", config.variant().clone());
    put("org.opencontainers.image.author", config.author().clone());
    put("org.opencontainers.image.created", config.created().clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(json: serde_json::Value) -> ImageConfiguration {
        serde_json::from_value(json).expect("image config")
    }

    fn busybox_like() -> ImageConfiguration {
        image(serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": ["PATH=/bin:/usr/bin", "FOO=bar"],
                "Cmd": ["sh"],
                "WorkingDir": "/srv",
                "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
                "Volumes": {"/data": {}},
                "Labels": {"maintainer": "us"},
                "StopSignal": "SIGQUIT"
            },
            "rootfs": {"type": "layers", "diff_ids": []}
        }))
    }

    fn root() -> user::ExecUser {
        user::resolve("", None, None).expect("root")
    }

    #[test]
    fn image_config_reaches_the_spec() {
        let opts = BundleOptions {
            env: vec!["FOO=baz".into()],
            ..Default::default()
        };
        let spec = from_image(&busybox_like(), &opts, &root(), "abcdef012345").expect("spec");
        let process = spec.process().as_ref().expect("process");
        assert_eq!(process.args().as_deref(), Some(&["sh".to_owned()][..]));
        assert_eq!(process.cwd(), &PathBuf::from("/srv"));
        let env = process.env().as_ref().expect("env");
        assert!(env.contains(&"PATH=/bin:/usr/bin".to_owned()));
        assert!(env.contains(&"FOO=baz".to_owned()));
        assert!(env.contains(&"HOSTNAME=abcdef012345".to_owned()));
        let annotations = spec.annotations().as_ref().expect("annotations");
        assert_eq!(annotations[ANNOTATION_EXPOSED_PORTS], "53/udp,8080/tcp");
        assert_eq!(annotations[ANNOTATION_STOP_SIGNAL], "SIGQUIT");
        assert_eq!(annotations[ANNOTATION_VOLUMES], "/data");
        assert_eq!(annotations["maintainer"], "us");
        let linux = spec.linux().as_ref().expect("linux");
        assert!(linux.seccomp().is_some());
    }

    #[test]
    fn options_change_the_spec() {
        let opts = BundleOptions {
            user: Some("7:8".into()),
            read_only: true,
            tty: true,
            network: NetworkMode::Host,
            memory: Some(64 << 20),
            pids_limit: Some(50),
            cap_drop: vec!["ALL".into()],
            ..Default::default()
        };
        let exec_user = user::resolve("7:8", None, None).expect("user");
        let spec = from_image(&busybox_like(), &opts, &exec_user, "h").expect("spec");
        let process = spec.process().as_ref().expect("process");
        assert_eq!((process.user().uid(), process.user().gid()), (7, 8));
        assert_eq!(process.terminal(), Some(true));
        assert!(process
            .env()
            .as_ref()
            .expect("env")
            .contains(&"TERM=xterm".to_owned()));
        let caps = process.capabilities().as_ref().expect("caps");
        assert_eq!(caps.bounding().as_ref().map(|c| c.len()), Some(0));
        assert_eq!(spec.root().as_ref().and_then(|r| r.readonly()), Some(true));
        let linux = spec.linux().as_ref().expect("linux");
        let has_net = linux
            .namespaces()
            .as_ref()
            .expect("namespaces")
            .iter()
            .any(|ns| ns.typ() == oci_spec::runtime::LinuxNamespaceType::Network);
        assert!(
            !has_net,
            "--network host keeps the host's network namespace"
        );
        let resources = linux.resources().as_ref().expect("resources");
        assert_eq!(
            resources.memory().as_ref().and_then(|m| m.limit()),
            Some(64 << 20)
        );
        assert_eq!(resources.pids().as_ref().map(|p| p.limit()), Some(50));
    }

    #[test]
    fn no_command_is_an_error() {
        let config = image(serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []}
        }));
        let err = from_image(&config, &BundleOptions::default(), &root(), "h").expect_err("no cmd");
        assert!(matches!(err, Error::NoCommand));
    }
}
