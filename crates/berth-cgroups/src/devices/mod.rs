//! Device access rules (`linux.resources.devices`), applied through the v1
//! `devices` controller's allow/deny lists or, on cgroup v2, an eBPF
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program.
//!
//! Semantics (runc's): access starts denied; rules apply in order, a later
//! rule overriding an earlier one; a rule of type `a` resets everything to
//! allow-all or deny-all. runc's default device list is appended to every
//! rule list (`DEFAULT_ALLOWED`), so a container can always use /dev/null & co.

pub(crate) mod bpf;
pub mod ebpf;

use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use crate::error::{Error, Result};
use crate::files;

/// `m`: create the device node.
pub const ACC_MKNOD: u8 = 1;
/// `r`
pub const ACC_READ: u8 = 2;
/// `w`
pub const ACC_WRITE: u8 = 4;
/// `rwm`
pub const ACC_ALL: u8 = 7;

/// The device type a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// every device (`a`): the rule resets the whole list
    All,
    Block,
    Char,
}

/// One device rule, normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Kind,
    /// `None` = any
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// bits of `ACC_*`
    pub access: u8,
}

impl Rule {
    const fn allow_char(major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
        Rule {
            allow: true,
            kind: Kind::Char,
            major,
            minor,
            access,
        }
    }

    /// The v1 `devices.allow`/`devices.deny` line (`c 1:3 rwm`, or `a`).
    pub fn v1_line(&self) -> String {
        let t = match self.kind {
            Kind::All => return "a".into(),
            Kind::Block => 'b',
            Kind::Char => 'c',
        };
        let n = |v: Option<u32>| v.map_or_else(|| "*".to_owned(), |v| v.to_string());
        format!(
            "{t} {}:{} {}",
            n(self.major),
            n(self.minor),
            access_string(self.access)
        )
    }
}

/// `rwm` letters of an access mask.
pub fn access_string(access: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
        if access & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// The devices runc lets every container use (appended after the spec's rules).
pub const DEFAULT_ALLOWED: &[Rule] = &[
    Rule::allow_char(None, None, ACC_MKNOD),
    Rule {
        allow: true,
        kind: Kind::Block,
        major: None,
        minor: None,
        access: ACC_MKNOD,
    },
    Rule::allow_char(Some(1), Some(3), ACC_ALL), // null
    Rule::allow_char(Some(1), Some(8), ACC_ALL), // random
    Rule::allow_char(Some(1), Some(7), ACC_ALL), // full
    Rule::allow_char(Some(5), Some(0), ACC_ALL), // tty
    Rule::allow_char(Some(1), Some(5), ACC_ALL), // zero
    Rule::allow_char(Some(1), Some(9), ACC_ALL), // urandom
    Rule::allow_char(Some(136), None, ACC_ALL),  // /dev/pts/*
    Rule::allow_char(Some(5), Some(2), ACC_ALL), // ptmx
];

fn rule_from_spec(index: usize, d: &LinuxDeviceCgroup) -> Result<Rule> {
    let bad = |reason: String| Error::InvalidDeviceRule { index, reason };
    let kind = match d.typ() {
        None | Some(LinuxDeviceType::A) => Kind::All,
        Some(LinuxDeviceType::B) => Kind::Block,
        Some(LinuxDeviceType::C) => Kind::Char,
        Some(t) => {
            return Err(bad(format!(
                "device type {:?} is not one of a, b, c",
                t.as_str()
            )))
        }
    };
    let num = |v: Option<i64>, what: &str| -> Result<Option<u32>> {
        match v {
            None => Ok(None),
            Some(n) if n < 0 => Ok(None),
            Some(n) => i32::try_from(n)
                .map(|n| Some(n as u32))
                .map_err(|_| bad(format!("{what} {n} is out of range"))),
        }
    };
    let mut access = 0;
    match d.access().as_deref() {
        None | Some("") => access = ACC_ALL,
        Some(s) => {
            for c in s.chars() {
                access |= match c {
                    'r' => ACC_READ,
                    'w' => ACC_WRITE,
                    'm' => ACC_MKNOD,
                    c => {
                        return Err(bad(format!(
                            "access {s:?}: unknown letter {c:?} (want r, w, m)"
                        )))
                    }
                };
            }
        }
    }
    Ok(Rule {
        allow: d.allow(),
        kind,
        major: num(d.major(), "major")?,
        minor: num(d.minor(), "minor")?,
        access,
    })
}

/// The spec's rules followed by [`DEFAULT_ALLOWED`].
pub fn rules_from_spec(devices: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    let mut rules = devices
        .iter()
        .enumerate()
        .map(|(i, d)| rule_from_spec(i, d))
        .collect::<Result<Vec<_>>>()?;
    rules.extend_from_slice(DEFAULT_ALLOWED);
    Ok(rules)
}

/// The rules `r` asks to program: its own (none when absent) followed by
/// [`DEFAULT_ALLOWED`]; `None` for an update that lists no devices, which
/// leaves the rules as they are.
pub(crate) fn rules_to_apply(r: &LinuxResources, update: bool) -> Result<Option<Vec<Rule>>> {
    match r.devices() {
        Some(d) => rules_from_spec(d).map(Some),
        None if update => Ok(None),
        None => rules_from_spec(&[]).map(Some),
    }
}

/// Allow rules for the device nodes of `linux.devices`, for the runtime to
/// append to `linux.resources.devices` (runc allows the devices it creates).
pub fn allow_rules_for(devices: &[LinuxDevice]) -> Vec<LinuxDeviceCgroup> {
    devices
        .iter()
        .filter(|d| {
            matches!(
                d.typ(),
                LinuxDeviceType::B | LinuxDeviceType::C | LinuxDeviceType::U
            )
        })
        .map(|d| {
            let mut r = LinuxDeviceCgroup::default();
            r.set_allow(true);
            r.set_typ(Some(match d.typ() {
                LinuxDeviceType::B => LinuxDeviceType::B,
                _ => LinuxDeviceType::C,
            }));
            r.set_major(Some(d.major()));
            r.set_minor(Some(d.minor()));
            r.set_access(Some("rwm".into()));
            r
        })
        .collect()
}

/// Program the v1 `devices` controller at `dir`: deny all, then each rule in
/// order (writes go to `devices.allow` or `devices.deny`).
pub(crate) fn apply_v1(dir: &Path, rules: &[Rule]) -> Result<()> {
    files::write(dir, "devices.deny", "a")?;
    for r in rules {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        files::write(dir, file, &r.v1_line())?;
    }
    Ok(())
}

/// Generate, load and attach the v2 device program to the cgroup `dir`,
/// replacing programs attached there before.
pub(crate) fn apply_v2(dir: &Path, rules: &[Rule]) -> Result<()> {
    let prog = ebpf::generate(rules);
    bpf::replace_device_program(dir, &prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_rule(json: &str) -> Result<Rule> {
        let d: LinuxDeviceCgroup =
            serde_json::from_str(json).map_err(|e| Error::InvalidDeviceRule {
                index: 0,
                reason: e.to_string(),
            })?;
        rule_from_spec(0, &d)
    }

    #[test]
    fn spec_rules_normalise() {
        let r = spec_rule(r#"{"allow":false,"access":"rwm"}"#).ok();
        assert_eq!(r.map(|r| r.v1_line()), Some("a".into()));
        let r = spec_rule(r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}"#).ok();
        assert_eq!(r.map(|r| r.v1_line()), Some("c 1:3 rw".into()));
        let r = spec_rule(r#"{"allow":true,"type":"b","major":8,"access":"m"}"#).ok();
        assert_eq!(r.map(|r| r.v1_line()), Some("b 8:* m".into()));
        assert!(spec_rule(r#"{"allow":true,"type":"c","access":"rx"}"#).is_err());
        assert!(spec_rule(r#"{"allow":true,"type":"p"}"#).is_err());
    }

    #[test]
    fn defaults_are_appended() {
        let r = rules_from_spec(&[]).unwrap_or_default();
        assert_eq!(r.len(), DEFAULT_ALLOWED.len());
        assert_eq!(r[2].v1_line(), "c 1:3 rwm");
        assert_eq!(r[8].v1_line(), "c 136:* rwm");
    }
}
