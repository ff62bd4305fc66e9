//! `kill [--all] ID [SIGNAL]`.

use super::{Context, Error, Status};

/// Send `signal` to init, or with `all` to every process of the container.
pub fn kill(ctx: &Context, id: &str, signal: i32, all: bool) -> Result<(), Error> {
    let dir = ctx.root.open(id)?;
    let st = dir.load()?;
    let status = super::status(&st);
    if status == Status::Stopped {
        return Err(Error::Invalid(format!("container {id} is not running")));
    }
    if all {
        if let Some(m) = &st.cgroup {
            m.kill_all(signal)?;
            return Ok(());
        }
    }
    let fd = super::open_init(&st)?;
    super::signal_pidfd(std::os::fd::AsFd::as_fd(&fd), signal)
}
