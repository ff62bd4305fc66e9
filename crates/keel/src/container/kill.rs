//! `kill [--all] ID [SIGNAL]`.

use super::{Context, Error, Status};

/// Send `signal` to init, or with `all` to every process of the container.
pub fn kill(ctx: &Context, id: &str, signal: i32, all: bool) -> Result<(), Error> {
    let dir = ctx.root.open(id)?;
    let st = dir.load()?;
    let (status, init) = super::status_pinned(&st);
    if status == Status::Stopped {
        return Err(super::not_running(id));
    }
    if all {
        if let Some(m) = &st.cgroup {
            m.kill_all(signal)?;
            return Ok(());
        }
    }
    let fd = init.ok_or_else(|| super::not_running(id))?;
    super::signal_pidfd(std::os::fd::AsFd::as_fd(&fd), signal)
}
