//! `start`: release a created container's init through exec.fifo.

use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::fs::{Mode, OFlags};

use super::{Context, Error, Status};
use crate::state::Phase;
use crate::{hooks, log};

/// `keel start ID`.
pub fn start(ctx: &Context, id: &str) -> Result<(), Error> {
    let dir = ctx.root.open(id)?;
    let mut st = dir.load()?;
    match super::status(&st) {
        Status::Created => {}
        Status::Stopped => {
            return Err(Error::Invalid(format!(
                "cannot start a container that has stopped: {id}"
            )))
        }
        s => {
            return Err(Error::Invalid(format!(
                "cannot start container {id}: it is {s}, not created"
            )))
        }
    }
    let fifo_path = dir.fifo();
    let fifo = rustix::fs::open(
        &fifo_path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(Error::errno(format!("cannot open {}", fifo_path.display())))?;
    // Init opens the fifo for writing as soon as we are a reader, then
    // writes one byte. Poll so a dead init cannot hang us.
    loop {
        let mut fds = [PollFd::new(&fifo, PollFlags::IN)];
        let ts = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => {}
            Ok(_) => {
                let mut b = [0u8; 1];
                match rustix::io::read(&fifo, &mut b) {
                    Ok(1) => break,
                    Ok(_) | Err(rustix::io::Errno::AGAIN) => {}
                    Err(e) => return Err(Error::errno("read exec.fifo")(e)),
                }
            }
            Err(e) => return Err(Error::errno("poll exec.fifo")(e)),
        }
        if !super::init_alive(&st) {
            return Err(Error::Invalid(format!(
                "container {id}: init exited before start"
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = std::fs::remove_file(&fifo_path);
    st.phase = Phase::Running;
    dir.write(&st)?;
    run_poststart(&st);
    Ok(())
}

/// poststart hooks: a failure is logged, the container keeps running.
pub(super) fn run_poststart(st: &crate::state::State) {
    let Some(h) = st
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.poststart().as_ref())
    else {
        return;
    };
    if let Err(e) = hooks::run_all(
        "poststart",
        Some(h),
        &super::hook_state(st, Status::Running),
    ) {
        let msg = crate::process::sync::ChildError::from_error(&e).message;
        log::warn(&msg);
        eprintln!("keel: warning: {msg}");
    }
}
