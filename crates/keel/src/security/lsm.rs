//! `process.apparmorProfile` and `process.selinuxLabel`: exec-time labels.
//!
//! Both are written to the task's `attr` files and take effect at execve.
//! When a label is asked for and its LSM is not enabled, the error says so
//! (runc silently ignores an AppArmor profile on a host without AppArmor; we
//! would rather not start a container with less confinement than asked for).

use std::io::Write;
use std::path::Path;

use super::Error;

const APPARMOR_ENABLED: &str = "/sys/module/apparmor/parameters/enabled";
const APPARMOR_EXEC: &str = "/proc/thread-self/attr/apparmor/exec";
const LEGACY_EXEC: &str = "/proc/thread-self/attr/exec";
const SELINUX_FS: &str = "/sys/fs/selinux";

/// Whether AppArmor is enabled on this kernel.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string(APPARMOR_ENABLED).is_ok_and(|s| s.trim_start().starts_with('Y'))
}

/// Whether SELinux is enabled (selinuxfs present).
pub fn selinux_enabled() -> bool {
    Path::new(SELINUX_FS).join("enforce").exists()
}

/// Refuse a requested label whose LSM is off. Cheap: callers can run it in
/// the parent before anything is set up.
pub fn check(apparmor: Option<&str>, selinux: Option<&str>) -> Result<(), Error> {
    if let Some(profile) = apparmor.filter(|p| !p.is_empty()) {
        if !apparmor_enabled() {
            return Err(Error::LsmUnavailable {
                field: "process.apparmorProfile",
                label: profile.to_string(),
                lsm: "AppArmor",
            });
        }
    }
    if let Some(label) = selinux.filter(|l| !l.is_empty()) {
        if !selinux_enabled() {
            return Err(Error::LsmUnavailable {
                field: "process.selinuxLabel",
                label: label.to_string(),
                lsm: "SELinux",
            });
        }
    }
    Ok(())
}

/// `exec <profile>` into the AppArmor exec attr (the stacked-LSM path first).
pub(super) fn apply_apparmor(profile: Option<&str>) -> Result<(), Error> {
    let Some(profile) = profile.filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    check(Some(profile), None)?;
    let what = || format!("setting AppArmor profile {profile:?}");
    let path = if Path::new(APPARMOR_EXEC).exists() {
        APPARMOR_EXEC
    } else {
        LEGACY_EXEC
    };
    write_attr(path, format!("exec {profile}").as_bytes()).map_err(|e| Error::step(what(), e))
}

/// The SELinux label into `attr/exec`.
pub(super) fn apply_selinux(label: Option<&str>) -> Result<(), Error> {
    let Some(label) = label.filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    check(None, Some(label))?;
    write_attr(LEGACY_EXEC, label.as_bytes())
        .map_err(|e| Error::step(format!("setting SELinux label {label:?}"), e))
}

/// The kernel wants the whole value in one write.
fn write_attr(path: &str, value: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn absent_or_empty_labels_need_nothing() {
        check(None, None).unwrap();
        check(Some(""), Some("")).unwrap();
    }

    #[test]
    fn missing_lsm_is_a_clear_error() {
        if !apparmor_enabled() {
            let err = check(Some("docker-default"), None).unwrap_err().to_string();
            assert_eq!(
                err,
                "process.apparmorProfile is set to \"docker-default\" but AppArmor is not enabled on this host"
            );
        }
        if !selinux_enabled() {
            let err = check(None, Some("system_u:system_r:container_t:s0")).unwrap_err();
            assert!(err.to_string().contains("SELinux is not enabled"), "{err}");
        }
    }
}
