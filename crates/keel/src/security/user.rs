//! `process.user`: supplementary groups, gid, uid and umask.
//!
//! PR_SET_KEEPCAPS is set before the uid change so the permitted set survives
//! it (the kernel would otherwise clear it when all uids become non-zero);
//! `caps::CapPlan::apply` then sets the final sets. The raw per-thread
//! set*id syscalls are used: the init is single-threaded, so glibc's
//! all-threads broadcast is not needed.

use oci_spec::runtime::{Process, User};
use rustix::fs::Mode;
use rustix::io::Errno;
use rustix::process::{Gid, Uid};
use rustix::thread as rthread;

use super::Error;

/// umask when `process.user.umask` is absent, as runc uses.
const DEFAULT_UMASK: u32 = 0o022;

/// Switch to `user`: setgroups, setresgid, setresuid, umask.
pub(super) fn switch(user: &User) -> Result<(), Error> {
    rthread::set_keep_capabilities(true).map_err(|e| Error::step("setting PR_SET_KEEPCAPS", e))?;
    set_groups(user.additional_gids().as_deref().unwrap_or_default())?;
    let gid = Gid::from_raw(user.gid());
    rthread::set_thread_res_gid(gid, gid, gid)
        .map_err(|e| Error::step(format!("setting gid to {}", user.gid()), e))?;
    let uid = Uid::from_raw(user.uid());
    rthread::set_thread_res_uid(uid, uid, uid)
        .map_err(|e| Error::step(format!("setting uid to {}", user.uid()), e))?;
    set_umask(user.umask())
}

/// setgroups(additionalGids). In a user namespace whose `setgroups` file says
/// `deny` the call fails with EPERM; that is fine when no groups were asked
/// for (there are no host groups to clear in such a namespace).
fn set_groups(gids: &[u32]) -> Result<(), Error> {
    let groups: Vec<Gid> = gids.iter().map(|g| Gid::from_raw(*g)).collect();
    match rthread::set_thread_groups(&groups) {
        Ok(()) => Ok(()),
        Err(Errno::PERM) if groups.is_empty() && setgroups_denied() => Ok(()),
        Err(e) => Err(Error::step(
            format!("setting supplementary groups {gids:?} (process.user.additionalGids)"),
            e,
        )),
    }
}

fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

pub(super) fn check_umask(mask: u32) -> Result<(), Error> {
    if mask > 0o777 {
        return Err(Error::invalid(
            "process.user.umask",
            format!("{mask:#o} is not a valid umask"),
        ));
    }
    Ok(())
}

fn set_umask(umask: Option<u32>) -> Result<(), Error> {
    let mask = umask.unwrap_or(DEFAULT_UMASK);
    check_umask(mask)?;
    rustix::process::umask(Mode::from_raw_mode(mask));
    Ok(())
}

/// `keel exec -u uid[:gid]` (numbers only, as runc accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: Option<u32>,
}

/// Parse `uid[:gid]`; the error quotes the value.
pub fn parse_exec_user(s: &str) -> Result<ExecUser, Error> {
    let bad = || Error::invalid("--user", format!("{s:?} is not uid[:gid] (numbers)"));
    let (uid, gid) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = uid.parse().map_err(|_| bad())?;
    let gid = gid.map(|g| g.parse()).transpose().map_err(|_| bad())?;
    Ok(ExecUser { uid, gid })
}

impl ExecUser {
    /// Override `process.user` with this uid (and gid when given).
    pub fn apply_to(self, process: &mut Process) {
        let mut user = process.user().clone();
        user.set_uid(self.uid);
        if let Some(gid) = self.gid {
            user.set_gid(gid);
        }
        process.set_user(user);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exec_user_forms() {
        assert_eq!(
            parse_exec_user("1000").unwrap(),
            ExecUser {
                uid: 1000,
                gid: None
            }
        );
        assert_eq!(
            parse_exec_user("1000:10").unwrap(),
            ExecUser {
                uid: 1000,
                gid: Some(10)
            }
        );
        for bad in ["", "bob", "1:x", ":1", "1:"] {
            let err = parse_exec_user(bad).unwrap_err().to_string();
            assert!(err.contains("--user"), "{bad}: {err}");
        }
    }

    #[test]
    fn exec_user_overrides_process_user() {
        let mut p = Process::default();
        parse_exec_user("7:8").unwrap().apply_to(&mut p);
        assert_eq!((p.user().uid(), p.user().gid()), (7, 8));
        parse_exec_user("9").unwrap().apply_to(&mut p);
        assert_eq!((p.user().uid(), p.user().gid()), (9, 8));
    }
}
