//! The staged namespace path, child side: when namespaces are joined by path
//! together with a new user namespace, or a new pid namespace is wanted in a
//! user namespace joined by path, the one clone creates nothing and the child
//! builds its namespaces in order:
//!
//! 1. join every namespace given by path (user first), while it still has
//!    the host's capabilities (or gets the joined user namespace's);
//! 2. create the new user namespace and have the parent write its id maps;
//! 3. unshare the other new namespaces (owned by that user namespace; the
//!    cgroup one after the cgroup join, which the first Proceed confirmed);
//! 4. for a new pid namespace, fork again (`CLONE_PARENT`: the grandchild is
//!    keel's child, so keel reaps and signals it like any init); the
//!    grandchild is PID 1 and goes on as the container's init, the
//!    intermediate reports its pid and exits.
//!
//! Every other spec keeps the fast path ([`Plan::staged`] is false): one
//! clone that creates the namespaces, no extra fork, no extra messages.

use super::init::wait_proceed;
use super::namespaces::Plan;
use super::spawn::{self, Forked};
use super::sync::{Channel, Msg};
use super::{finish, Error};

/// Child: build the namespaces of a staged plan; returns the container
/// init's host pid once the parent has recorded it (in the process that goes
/// on as init).
pub fn enter(plan: &Plan, chan: &Channel) -> Result<i32, Error> {
    plan.join_child()?;
    if plan.new_user {
        plan.unshare_user()?;
        chan.send(&Msg::MapIds, None).map_err(Error::Sync)?;
        match chan.expect("keel").map_err(Error::Sync)? {
            (Msg::IdsMapped, _) => {}
            (Msg::Failed(e), _) => return Err(Error::Parent(e)),
            (other, _) => return Err(Error::Protocol(format!("{other:?}"))),
        }
    }
    plan.unshare_rest()?;
    if plan.fork_pid {
        become_pid1(chan)?;
    } else {
        chan.send(&Msg::Init { pid: None }, None)
            .map_err(Error::Sync)?;
    }
    wait_proceed(chan).map(|(pid, _)| pid)
}

/// Fork the process that is PID 1 of the new pid namespace. Returns only in
/// that grandchild; the intermediate reports its pid and exits.
fn become_pid1(chan: &Channel) -> Result<(), Error> {
    // SAFETY: single-threaded; the grandchild continues init, which ends in
    // execve or _exit, and the intermediate only sends one message and
    // leaves with _exit.
    let forked = unsafe { spawn::clone(libc::CLONE_PARENT as u64, None) };
    match forked {
        Ok(Forked::Parent { pid, .. }) => {
            let sent = chan.send(&Msg::Init { pid: Some(pid) }, None);
            spawn::exit_now(if sent.is_ok() { 0 } else { 1 })
        }
        Ok(Forked::Child) => {
            // fork cleared the death signal; our parent is keel again.
            finish::die_with_parent(true);
            Ok(())
        }
        Err(e) => Err(Error::Step {
            what: "fork into the new pid namespace".into(),
            source: e,
        }),
    }
}
