//! The five capability sets of `process.capabilities`.
//!
//! Sets are kept as 64-bit masks (bit n = capability n) and applied with raw
//! capset/prctl calls through rustix: one capset for effective, permitted and
//! inheritable together, one prctl per dropped bounding cap and per ambient
//! cap. Capabilities the running kernel does not know (above
//! `/proc/sys/kernel/cap_last_cap`, probed with PR_CAPBSET_READ) are ignored
//! with a debug note, as runc does.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Process};
use rustix::io::Errno;
use rustix::thread::{self as rthread, CapabilitySet, CapabilitySets};

use super::Error;

/// Bit of CAP_SYS_ADMIN, held through a seccomp load without no_new_privs.
pub(super) const CAP_SYS_ADMIN_BIT: u64 = 1 << 21;

/// The kernel's capability number for an OCI capability.
pub(super) fn cap_number(cap: Capability) -> u32 {
    use Capability as C;
    match cap {
        C::Chown => 0,
        C::DacOverride => 1,
        C::DacReadSearch => 2,
        C::Fowner => 3,
        C::Fsetid => 4,
        C::Kill => 5,
        C::Setgid => 6,
        C::Setuid => 7,
        C::Setpcap => 8,
        C::LinuxImmutable => 9,
        C::NetBindService => 10,
        C::NetBroadcast => 11,
        C::NetAdmin => 12,
        C::NetRaw => 13,
        C::IpcLock => 14,
        C::IpcOwner => 15,
        C::SysModule => 16,
        C::SysRawio => 17,
        C::SysChroot => 18,
        C::SysPtrace => 19,
        C::SysPacct => 20,
        C::SysAdmin => 21,
        C::SysBoot => 22,
        C::SysNice => 23,
        C::SysResource => 24,
        C::SysTime => 25,
        C::SysTtyConfig => 26,
        C::Mknod => 27,
        C::Lease => 28,
        C::AuditWrite => 29,
        C::AuditControl => 30,
        C::Setfcap => 31,
        C::MacOverride => 32,
        C::MacAdmin => 33,
        C::Syslog => 34,
        C::WakeAlarm => 35,
        C::BlockSuspend => 36,
        C::AuditRead => 37,
        C::Perfmon => 38,
        C::Bpf => 39,
        C::CheckpointRestore => 40,
    }
}

/// Parse a capability name as runc's `exec --cap` accepts it: `CAP_NET_RAW`,
/// `net_raw` or `NET_RAW`. The error names the capability.
pub fn parse_capability(name: &str) -> Result<Capability, Error> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| Error::UnknownCapability(name.to_string()))
}

/// `keel exec --cap X`: add X to the bounding, effective and permitted sets
/// (and to inheritable and ambient when the process already has an
/// inheritable set), as runc does.
pub fn apply_exec_capability_additions(
    process: &mut Process,
    names: &[String],
) -> Result<(), Error> {
    if names.is_empty() {
        return Ok(());
    }
    let added = names
        .iter()
        .map(|n| parse_capability(n))
        .collect::<Result<Vec<_>, _>>()?;
    let mut caps = process.capabilities().clone().unwrap_or_else(empty_caps);
    let grow = |set: &Option<Capabilities>| {
        let mut set = set.clone().unwrap_or_default();
        set.extend(added.iter().copied());
        Some(set)
    };
    caps.set_bounding(grow(caps.bounding()));
    caps.set_effective(grow(caps.effective()));
    caps.set_permitted(grow(caps.permitted()));
    if caps.inheritable().as_ref().is_some_and(|s| !s.is_empty()) {
        caps.set_inheritable(grow(caps.inheritable()));
        caps.set_ambient(grow(caps.ambient()));
    }
    process.set_capabilities(Some(caps));
    Ok(())
}

/// A `capabilities` object with all five sets absent.
fn empty_caps() -> LinuxCapabilities {
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(None)
        .set_effective(None)
        .set_permitted(None)
        .set_inheritable(None)
        .set_ambient(None);
    caps
}

/// The capability numbers the running kernel knows (bits 0..=last), found
/// by a binary search with PR_CAPBSET_READ, which fails with EINVAL past the
/// last one: six syscalls instead of reading /proc (which may not be mounted).
fn kernel_caps_mask() -> u64 {
    let known = |n: u32| {
        !matches!(
            rthread::capability_is_in_bounding_set(CapabilitySet::from_bits_retain(1 << n)),
            Err(Errno::INVAL)
        )
    };
    let (mut lo, mut hi) = (0u32, 63u32); // capability 0 always exists
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if known(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if lo == 63 {
        u64::MAX
    } else {
        (1u64 << (lo + 1)) - 1
    }
}

/// The five target sets as masks, restricted to what the kernel knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct CapPlan {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
    /// Capabilities the running kernel knows.
    pub known: u64,
}

fn mask_of(set: &Option<Capabilities>, known: u64, which: &str) -> u64 {
    let mut mask = 0u64;
    for cap in set.iter().flatten() {
        let bit = 1u64 << cap_number(*cap);
        if bit & known == 0 {
            crate::log::debug(|| {
                format!("ignoring capability {cap} in {which}: the running kernel does not know it")
            });
        }
        mask |= bit & known;
    }
    mask
}

impl CapPlan {
    /// Masks from `process.capabilities` (absent means: no capabilities).
    pub(super) fn from_process(process: &Process) -> Result<Self, Error> {
        Ok(match process.capabilities() {
            Some(caps) => Self::from_sets(caps, kernel_caps_mask()),
            None => CapPlan {
                known: kernel_caps_mask(),
                ..CapPlan::default()
            },
        })
    }

    pub(super) fn from_sets(caps: &LinuxCapabilities, known: u64) -> Self {
        CapPlan {
            bounding: mask_of(caps.bounding(), known, "bounding"),
            effective: mask_of(caps.effective(), known, "effective"),
            permitted: mask_of(caps.permitted(), known, "permitted"),
            inheritable: mask_of(caps.inheritable(), known, "inheritable"),
            ambient: mask_of(caps.ambient(), known, "ambient"),
            known,
        }
    }

    /// Apply every set; `held` caps (those we have) stay in effective and
    /// permitted on top of the target until [`CapPlan::drop_held`].
    pub(super) fn apply(&self, held: u64) -> Result<(), Error> {
        let held = held & raise_effective_from_permitted()?;
        self.drop_bounding()?;
        capset(
            self.effective | held,
            self.permitted | held,
            self.inheritable,
        )?;
        self.set_ambient()
    }

    /// The final capset without any held capability.
    pub(super) fn drop_held(&self) -> Result<(), Error> {
        capset(self.effective, self.permitted, self.inheritable)
    }

    /// PR_CAPBSET_DROP every known capability not kept (dropping one that is
    /// already gone is a harmless no-op, cheaper than reading first).
    fn drop_bounding(&self) -> Result<(), Error> {
        let drop = self.known & !self.bounding;
        for n in (0..64u32).filter(|n| drop & (1 << n) != 0) {
            let cap = CapabilitySet::from_bits_retain(1 << n);
            rthread::remove_capability_from_bounding_set(cap).map_err(|e| {
                Error::step(format!("dropping capability {n} from the bounding set"), e)
            })?;
        }
        Ok(())
    }

    fn set_ambient(&self) -> Result<(), Error> {
        match rthread::clear_ambient_capability_set() {
            Ok(()) => {}
            // Kernels before 4.3 have no ambient set: nothing to clear.
            Err(Errno::INVAL) if self.ambient == 0 => return Ok(()),
            Err(e) => return Err(Error::step("clearing the ambient capability set", e)),
        }
        // The kernel only lets a capability into the ambient set when it is
        // in permitted and inheritable. `runc spec` lists ambient caps without
        // inheritable ones, and runc only warns: so do we.
        let raisable = self.ambient & self.permitted & self.inheritable;
        if raisable != self.ambient {
            crate::log::warn(&format!(
                "ignoring ambient capabilities {:#x}: not in both the permitted and inheritable sets",
                self.ambient & !raisable
            ));
        }
        for n in (0..64u32).filter(|n| raisable & (1 << n) != 0) {
            let cap = CapabilitySet::from_bits_retain(1 << n);
            rthread::configure_capability_in_ambient_set(cap, true)
                .map_err(|e| Error::step(format!("raising ambient capability {n}"), e))?;
        }
        Ok(())
    }
}

/// After setuid to a non-zero uid the kernel clears the effective set even
/// with KEEPCAPS; PR_CAPBSET_DROP needs CAP_SETPCAP in it.
/// Returns the permitted set.
fn raise_effective_from_permitted() -> Result<u64, Error> {
    let current =
        rthread::capabilities(None).map_err(|e| Error::step("reading capabilities", e))?;
    let permitted = current.permitted.bits();
    if current.effective == current.permitted {
        return Ok(permitted);
    }
    let sets = CapabilitySets {
        effective: current.permitted,
        ..current
    };
    rthread::set_capabilities(None, sets)
        .map_err(|e| Error::step("raising effective capabilities", e))?;
    Ok(permitted)
}

fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<(), Error> {
    let sets = CapabilitySets {
        effective: CapabilitySet::from_bits_retain(effective),
        permitted: CapabilitySet::from_bits_retain(permitted),
        inheritable: CapabilitySet::from_bits_retain(inheritable),
    };
    rthread::set_capabilities(None, sets).map_err(|e| {
        Error::step(
            format!(
                "setting capabilities (effective {effective:#x}, permitted {permitted:#x}, inheritable {inheritable:#x})"
            ),
            e,
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_and_without_prefix() {
        assert_eq!(parse_capability("CAP_NET_RAW").unwrap(), Capability::NetRaw);
        assert_eq!(parse_capability("net_raw").unwrap(), Capability::NetRaw);
        assert_eq!(parse_capability("SYS_ADMIN").unwrap(), Capability::SysAdmin);
    }

    #[test]
    fn unknown_name_is_named_in_the_error() {
        let err = parse_capability("CAP_FLY").unwrap_err();
        assert_eq!(err.to_string(), "unknown capability \"CAP_FLY\"");
    }

    #[test]
    fn kernel_mask_matches_cap_last_cap() {
        let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(kernel_caps_mask(), (1u64 << (last + 1)) - 1);
    }

    #[test]
    fn numbers_match_the_kernel_header() {
        assert_eq!(cap_number(Capability::Chown), 0);
        assert_eq!(cap_number(Capability::SysAdmin), 21);
        assert_eq!(1u64 << cap_number(Capability::SysAdmin), CAP_SYS_ADMIN_BIT);
        assert_eq!(cap_number(Capability::AuditRead), 37);
        assert_eq!(cap_number(Capability::CheckpointRestore), 40);
    }

    #[test]
    fn unknown_to_kernel_caps_are_ignored() {
        let caps: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_CHOWN","CAP_CHECKPOINT_RESTORE"],"effective":["CAP_KILL"]}"#,
        )
        .unwrap();
        // A kernel that knows caps 0..=37 only.
        let plan = CapPlan::from_sets(&caps, (1 << 38) - 1);
        assert_eq!(plan.known, (1 << 38) - 1);
        assert_eq!(plan.bounding, 1);
        assert_eq!(plan.effective, 1 << 5);
        assert_eq!(plan.permitted, 0);
        assert_eq!(plan.ambient, 0);
    }

    #[test]
    fn exec_cap_additions_follow_runc() {
        let mut p: Process = serde_json::from_str(
            r#"{"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_KILL"]}}"#,
        )
        .unwrap();
        apply_exec_capability_additions(&mut p, &["CAP_NET_RAW".into()]).unwrap();
        let caps = p.capabilities().clone().unwrap();
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::NetRaw));
        assert!(caps
            .permitted()
            .as_ref()
            .unwrap()
            .contains(&Capability::NetRaw));
        // No inheritable set: ambient untouched.
        assert!(caps.ambient().is_none());
        let mut p = Process::default();
        apply_exec_capability_additions(&mut p, &["net_raw".into()]).unwrap();
        let caps = p.capabilities().clone().unwrap();
        assert!(caps
            .ambient()
            .as_ref()
            .unwrap()
            .contains(&Capability::NetRaw));
        let err = apply_exec_capability_additions(&mut p, &["bogus".into()]).unwrap_err();
        assert!(err.to_string().contains("bogus"));
    }
}
