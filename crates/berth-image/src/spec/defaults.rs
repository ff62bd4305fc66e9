//! The runtime spec Docker gives a container before the image and the user's
//! flags are applied: 14 capabilities, masked and read-only `/proc` and
//! `/sys` paths, the standard `/dev` mounts, a device cgroup that denies
//! everything but the usual character devices, five namespaces (six on a
//! cgroup v2 host), no rlimits and `no_new_privileges` off.

use std::path::PathBuf;

use oci_spec::runtime::{
    Capabilities, Capability, Linux, LinuxCapabilities, LinuxDeviceCgroup, LinuxDeviceType,
    LinuxNamespace, LinuxNamespaceType, LinuxResources, Mount, Process, Root, Spec, User,
};

/// `PATH` a container gets when its image sets none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Size of `/dev/shm` (Docker's `--shm-size` default, 64 MiB).
pub const SHM_SIZE: &str = "size=65536k";

/// The capabilities Docker grants by default.
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// `/proc` and `/sys` entries hidden from the container (a `/dev/null` or
/// empty tmpfs is mounted over them).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// `/proc` entries remounted read-only.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's default spec for a container whose hostname is `hostname`.
/// `cgroup_ns` adds a private cgroup namespace (Docker's default on cgroup v2
/// hosts). The seccomp profile is left out: it depends on the final
/// capabilities, see [`super::seccomp::profile`].
pub fn spec(hostname: &str, cgroup_ns: bool) -> Spec {
    let mut spec = Spec::default();
    spec.set_hostname(Some(hostname.to_owned()))
        .set_root(Some(root()))
        .set_process(Some(process()))
        .set_mounts(Some(mounts()))
        .set_annotations(None)
        .set_linux(Some(linux(cgroup_ns)));
    spec
}

/// The default capability set, as a set.
pub fn default_capabilities() -> Capabilities {
    DEFAULT_CAPABILITIES.iter().copied().collect()
}

/// Bounding, effective and permitted hold `caps`; inheritable and ambient
/// stay empty, as in Docker (since 20.10.14).
pub fn capability_sets(caps: &Capabilities) -> LinuxCapabilities {
    let mut sets = LinuxCapabilities::default();
    sets.set_bounding(Some(caps.clone()))
        .set_effective(Some(caps.clone()))
        .set_permitted(Some(caps.clone()))
        .set_inheritable(None)
        .set_ambient(None);
    sets
}

/// Whether `/sys/fs/cgroup` is a pure cgroup v2 mount.
// f_type is i64 on some targets and u32 or i32 on others
#[allow(clippy::unnecessary_cast)]
pub fn host_is_cgroup_v2() -> bool {
    rustix::fs::statfs("/sys/fs/cgroup")
        .map(|fs| fs.f_type as i64 == libc::CGROUP2_SUPER_MAGIC as i64)
        .unwrap_or(false)
}

fn root() -> Root {
    let mut root = Root::default();
    root.set_path(PathBuf::from("rootfs"))
        .set_readonly(Some(false));
    root
}

fn process() -> Process {
    let mut process = Process::default();
    process
        .set_terminal(Some(false))
        .set_user(User::default())
        .set_args(None)
        .set_env(Some(vec![format!("PATH={DEFAULT_PATH}")]))
        .set_cwd(PathBuf::from("/"))
        .set_capabilities(Some(capability_sets(&default_capabilities())))
        .set_rlimits(None)
        .set_no_new_privileges(Some(false))
        .set_oom_score_adj(Some(0));
    process
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut mount = Mount::default();
    mount
        .set_destination(PathBuf::from(destination))
        .set_typ(Some(typ.to_owned()))
        .set_source(Some(PathBuf::from(source)))
        .set_options(Some(options.iter().map(|o| (*o).to_owned()).collect()));
    mount
}

fn mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", SHM_SIZE],
        ),
    ]
}

fn namespace(typ: LinuxNamespaceType) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ);
    ns
}

/// The namespaces a container gets (no `network` with `--network host`).
pub fn namespaces(cgroup_ns: bool, network: bool) -> Vec<LinuxNamespace> {
    let mut list = vec![
        namespace(LinuxNamespaceType::Mount),
        namespace(LinuxNamespaceType::Uts),
        namespace(LinuxNamespaceType::Pid),
        namespace(LinuxNamespaceType::Ipc),
    ];
    if network {
        list.push(namespace(LinuxNamespaceType::Network));
    }
    if cgroup_ns {
        list.push(namespace(LinuxNamespaceType::Cgroup));
    }
    list
}

fn device_rule(
    allow: bool,
    typ: LinuxDeviceType,
    dev: Option<(i64, Option<i64>)>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(allow)
        .set_typ(Some(typ))
        .set_major(dev.map(|(major, _)| major))
        .set_minor(dev.and_then(|(_, minor)| minor))
        .set_access(Some(access.to_owned()));
    rule
}

/// Deny every device, then allow creating any node and using the usual
/// character devices (null, zero, full, random, urandom, tty, console, the
/// pty master and slaves, tun).
pub fn device_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{A, B, C};
    let char_dev = |major, minor| device_rule(true, C, Some((major, minor)), "rwm");
    vec![
        device_rule(false, A, None, "rwm"),
        device_rule(true, C, None, "m"),
        device_rule(true, B, None, "m"),
        char_dev(1, Some(3)),    // null
        char_dev(1, Some(5)),    // zero
        char_dev(1, Some(7)),    // full
        char_dev(1, Some(8)),    // random
        char_dev(1, Some(9)),    // urandom
        char_dev(5, Some(0)),    // tty
        char_dev(5, Some(1)),    // console
        char_dev(5, Some(2)),    // ptmx
        char_dev(136, None),     // pts/*
        char_dev(10, Some(200)), // net/tun
    ]
}

fn linux(cgroup_ns: bool) -> Linux {
    let mut resources = LinuxResources::default();
    resources.set_devices(Some(device_rules()));
    let mut linux = Linux::default();
    linux
        .set_namespaces(Some(namespaces(cgroup_ns, true)))
        .set_masked_paths(Some(MASKED_PATHS.iter().map(|p| (*p).to_owned()).collect()))
        .set_readonly_paths(Some(
            READONLY_PATHS.iter().map(|p| (*p).to_owned()).collect(),
        ))
        .set_resources(Some(resources))
        .set_uid_mappings(None)
        .set_gid_mappings(None)
        .set_devices(None)
        .set_seccomp(None);
    linux
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_defaults_in_the_spec() {
        let spec = spec("0123456789ab", false);
        assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
        let process = spec.process().as_ref().expect("process");
        assert_eq!(process.no_new_privileges(), Some(false));
        assert!(process.rlimits().is_none());
        let caps = process.capabilities().as_ref().expect("capabilities");
        assert_eq!(caps.bounding().as_ref().map(|c| c.len()), Some(14));
        assert_eq!(caps.effective(), caps.bounding());
        assert_eq!(caps.permitted(), caps.bounding());
        assert!(caps.inheritable().is_none() && caps.ambient().is_none());
        let mounts = spec.mounts().as_ref().expect("mounts");
        let shm = mounts
            .iter()
            .find(|m| m.destination() == &PathBuf::from("/dev/shm"))
            .expect("/dev/shm");
        assert!(shm
            .options()
            .as_ref()
            .expect("options")
            .contains(&SHM_SIZE.to_owned()));
        let linux = spec.linux().as_ref().expect("linux");
        let kinds: Vec<_> = linux
            .namespaces()
            .as_ref()
            .expect("namespaces")
            .iter()
            .map(|ns| ns.typ())
            .collect();
        assert_eq!(kinds.len(), 5);
        assert!(!kinds.contains(&LinuxNamespaceType::Cgroup));
        assert!(linux
            .masked_paths()
            .as_ref()
            .expect("masked")
            .contains(&"/proc/kcore".to_owned()));
        assert!(linux
            .readonly_paths()
            .as_ref()
            .expect("ro")
            .contains(&"/proc/sys".to_owned()));
    }

    #[test]
    fn cgroup_namespace_only_when_asked() {
        let kinds = |cgroup_ns, network| -> Vec<LinuxNamespaceType> {
            namespaces(cgroup_ns, network)
                .iter()
                .map(|ns| ns.typ())
                .collect()
        };
        assert!(kinds(true, true).contains(&LinuxNamespaceType::Cgroup));
        assert!(!kinds(false, true).contains(&LinuxNamespaceType::Cgroup));
        assert!(!kinds(false, false).contains(&LinuxNamespaceType::Network));
    }

    #[test]
    fn device_cgroup_denies_first_then_allows() {
        let rules = device_rules();
        assert!(!rules[0].allow());
        assert!(rules[1..].iter().all(|r| r.allow()));
    }
}
