//! `--cap-add` / `--cap-drop` on top of Docker's default capabilities.

use oci_spec::runtime::{Capabilities, Capability};

use super::defaults::DEFAULT_CAPABILITIES;
use super::Error;

/// Every capability with its kernel number (`capability.h`).
const ALL: [(Capability, u32); 41] = [
    (Capability::Chown, 0),
    (Capability::DacOverride, 1),
    (Capability::DacReadSearch, 2),
    (Capability::Fowner, 3),
    (Capability::Fsetid, 4),
    (Capability::Kill, 5),
    (Capability::Setgid, 6),
    (Capability::Setuid, 7),
    (Capability::Setpcap, 8),
    (Capability::LinuxImmutable, 9),
    (Capability::NetBindService, 10),
    (Capability::NetBroadcast, 11),
    (Capability::NetAdmin, 12),
    (Capability::NetRaw, 13),
    (Capability::IpcLock, 14),
    (Capability::IpcOwner, 15),
    (Capability::SysModule, 16),
    (Capability::SysRawio, 17),
    (Capability::SysChroot, 18),
    (Capability::SysPtrace, 19),
    (Capability::SysPacct, 20),
    (Capability::SysAdmin, 21),
    (Capability::SysBoot, 22),
    (Capability::SysNice, 23),
    (Capability::SysResource, 24),
    (Capability::SysTime, 25),
    (Capability::SysTtyConfig, 26),
    (Capability::Mknod, 27),
    (Capability::Lease, 28),
    (Capability::AuditWrite, 29),
    (Capability::AuditControl, 30),
    (Capability::Setfcap, 31),
    (Capability::MacOverride, 32),
    (Capability::MacAdmin, 33),
    (Capability::Syslog, 34),
    (Capability::WakeAlarm, 35),
    (Capability::BlockSuspend, 36),
    (Capability::AuditRead, 37),
    (Capability::Perfmon, 38),
    (Capability::Bpf, 39),
    (Capability::CheckpointRestore, 40),
];

/// Parse `SYS_ADMIN`, `CAP_SYS_ADMIN` or `sys_admin`.
pub fn parse(name: &str) -> Result<Capability, Error> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    bare.parse()
        .map_err(|_| Error::UnknownCapability(name.to_owned()))
}

fn is_all(name: &str) -> bool {
    name.trim().eq_ignore_ascii_case("ALL")
}

/// The capabilities the engine itself may grant: those in our bounding set
/// (every known one if `/proc/self/status` cannot be read).
pub fn grantable() -> Capabilities {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("CapBnd:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        });
    ALL.iter()
        .filter(|(_, bit)| bounding.is_none_or(|mask| mask & (1u64 << bit) != 0))
        .map(|(cap, _)| *cap)
        .collect()
}

/// Docker's rules: `--cap-add ALL` grants everything but what is dropped;
/// `--cap-drop ALL` keeps only what is added; otherwise the defaults minus
/// the drops plus the adds (an add wins over a drop of the same name).
pub fn resolve(cap_add: &[String], cap_drop: &[String]) -> Result<Capabilities, Error> {
    let parse_list = |list: &[String]| -> Result<Capabilities, Error> {
        list.iter()
            .filter(|n| !is_all(n))
            .map(|n| parse(n))
            .collect()
    };
    let add = parse_list(cap_add)?;
    let drop = parse_list(cap_drop)?;
    let caps = if cap_add.iter().any(|n| is_all(n)) {
        grantable()
            .into_iter()
            .filter(|c| !drop.contains(c))
            .collect()
    } else if cap_drop.iter().any(|n| is_all(n)) {
        add
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .filter(|c| !drop.contains(c))
            .chain(add)
            .collect()
    };
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn add_and_drop_like_docker() {
        let defaults = resolve(&[], &[]).expect("defaults");
        assert_eq!(defaults.len(), 14);
        // (add, drop, must contain, must not contain)
        type Case<'a> = (
            &'a [&'a str],
            &'a [&'a str],
            &'a [Capability],
            &'a [Capability],
        );
        let cases: &[Case] = &[
            // (add, drop, must contain, must not contain)
            (
                &["SYS_ADMIN"],
                &[],
                &[Capability::SysAdmin, Capability::Chown],
                &[],
            ),
            (
                &["cap_net_admin"],
                &["NET_RAW"],
                &[Capability::NetAdmin],
                &[Capability::NetRaw],
            ),
            (&[], &["ALL"], &[], &[Capability::Chown, Capability::Kill]),
            (
                &["KILL"],
                &["ALL"],
                &[Capability::Kill],
                &[Capability::Chown],
            ),
            (&["CHOWN"], &["CHOWN"], &[Capability::Chown], &[]),
        ];
        for (add, drop, present, absent) in cases {
            let caps = resolve(&names(add), &names(drop)).expect("resolve");
            for cap in *present {
                assert!(
                    caps.contains(cap),
                    "{cap:?} missing for add {add:?} drop {drop:?}"
                );
            }
            for cap in *absent {
                assert!(
                    !caps.contains(cap),
                    "{cap:?} present for add {add:?} drop {drop:?}"
                );
            }
        }
        let all = resolve(&names(&["ALL"]), &names(&["MKNOD"])).expect("all");
        assert!(all.len() > 14 && !all.contains(&Capability::Mknod));
        assert!(matches!(
            resolve(&names(&["FLY"]), &[]),
            Err(Error::UnknownCapability(_))
        ));
    }
}
