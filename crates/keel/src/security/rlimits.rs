//! `process.rlimits`: setrlimit for every entry, in the order given.
//!
//! Raising a hard limit above the current one needs CAP_SYS_RESOURCE, so this
//! runs before the capabilities are dropped; when the host itself lacks the
//! capability (as the lab machine does) the kernel answers EPERM and so does
//! runc.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};
use rustix::process::{Resource, Rlimit};

use super::Error;

/// The rustix resource for an OCI rlimit type.
pub(super) fn resource(typ: PosixRlimitType) -> Resource {
    use PosixRlimitType as T;
    match typ {
        T::RlimitCpu => Resource::Cpu,
        T::RlimitFsize => Resource::Fsize,
        T::RlimitData => Resource::Data,
        T::RlimitStack => Resource::Stack,
        T::RlimitCore => Resource::Core,
        T::RlimitRss => Resource::Rss,
        T::RlimitNproc => Resource::Nproc,
        T::RlimitNofile => Resource::Nofile,
        T::RlimitMemlock => Resource::Memlock,
        T::RlimitAs => Resource::As,
        T::RlimitLocks => Resource::Locks,
        T::RlimitSigpending => Resource::Sigpending,
        T::RlimitMsgqueue => Resource::Msgqueue,
        T::RlimitNice => Resource::Nice,
        T::RlimitRtprio => Resource::Rtprio,
        T::RlimitRttime => Resource::Rttime,
    }
}

/// u64::MAX is RLIM_INFINITY, which rustix spells `None`.
fn limit_value(v: u64) -> Option<u64> {
    (v != u64::MAX).then_some(v)
}

fn show(v: u64) -> String {
    if v == u64::MAX {
        "unlimited".to_string()
    } else {
        v.to_string()
    }
}

/// Check one entry: the soft limit may not exceed the hard one.
pub(super) fn validate(limit: &PosixRlimit) -> Result<(), Error> {
    if limit.soft() > limit.hard() {
        return Err(Error::invalid(
            format!("process.rlimits {}", limit.typ()),
            format!(
                "soft limit {} is above the hard limit {}",
                show(limit.soft()),
                show(limit.hard())
            ),
        ));
    }
    Ok(())
}

/// Set every rlimit; the error names the limit and the values asked for.
pub(super) fn apply(limits: &[PosixRlimit]) -> Result<(), Error> {
    for limit in limits {
        validate(limit)?;
        let value = Rlimit {
            current: limit_value(limit.soft()),
            maximum: limit_value(limit.hard()),
        };
        rustix::process::setrlimit(resource(limit.typ()), value).map_err(|e| {
            Error::step(
                format!(
                    "setting rlimit {} (soft {}, hard {})",
                    limit.typ(),
                    show(limit.soft()),
                    show(limit.hard())
                ),
                e,
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_oci_name_maps_to_its_kernel_resource() {
        let cases = [
            ("RLIMIT_CPU", libc::RLIMIT_CPU),
            ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
            ("RLIMIT_DATA", libc::RLIMIT_DATA),
            ("RLIMIT_STACK", libc::RLIMIT_STACK),
            ("RLIMIT_CORE", libc::RLIMIT_CORE),
            ("RLIMIT_RSS", libc::RLIMIT_RSS),
            ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
            ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
            ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
            ("RLIMIT_AS", libc::RLIMIT_AS),
            ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
            ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
            ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
            ("RLIMIT_NICE", libc::RLIMIT_NICE),
            ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
            ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
        ];
        for (name, number) in cases {
            let typ: PosixRlimitType = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(resource(typ) as u32, number, "{name}");
        }
    }

    #[test]
    fn unknown_name_is_rejected_by_the_spec_parser() {
        let err =
            serde_json::from_value::<PosixRlimitType>(serde_json::json!("RLIMIT_FOO")).unwrap_err();
        assert!(err.to_string().contains("RLIMIT_FOO"), "{err}");
    }

    #[test]
    fn soft_above_hard_names_the_limit() {
        let limit: PosixRlimit =
            serde_json::from_str(r#"{"type":"RLIMIT_NOFILE","soft":10,"hard":5}"#).unwrap();
        let err = validate(&limit).unwrap_err().to_string();
        assert_eq!(
            err,
            "config.json: process.rlimits RLIMIT_NOFILE: soft limit 10 is above the hard limit 5"
        );
    }

    #[test]
    fn infinity_is_unlimited() {
        assert_eq!(limit_value(u64::MAX), None);
        assert_eq!(limit_value(1024), Some(1024));
    }
}
