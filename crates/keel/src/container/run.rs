//! `run`: create and start in one process; in the foreground, supervise the
//! container and delete it when it exits.

use super::create::{launch, CreateOptions, Mode};
use super::{Context, Error, Status};
use crate::log;
use crate::process::sync::Msg;
use crate::state::Phase;

/// `run` flags.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub create: CreateOptions,
    pub detach: bool,
    /// keep the stopped container's state (`--keep`)
    pub keep: bool,
    pub no_subreaper: bool,
}

/// `keel run`; returns the exit code to exit with.
pub fn run(ctx: &Context, id: &str, opts: &RunOptions) -> Result<i32, Error> {
    let mode = if opts.detach {
        Mode::Detached
    } else {
        Mode::Foreground
    };
    let mut l = launch(ctx, id, &opts.create, mode)?;
    l.chan
        .send(&Msg::Start, None)
        .map_err(Error::io("sync with init"))?;
    // The channel closes when execve succeeds; a message means it failed.
    if let Some((msg, _)) = l.chan.recv().map_err(Error::io("sync with init"))? {
        return Err(match msg {
            Msg::Failed(e) => Error::Child(e),
            other => Error::Invalid(format!("unexpected message from init: {other:?}")),
        });
    }
    log::debug(|| "exec done".into());
    l.state.phase = Phase::Running;
    l.dir.write(&l.state)?;
    l.keep();
    super::start::run_poststart(&l.state);
    if opts.detach {
        return Ok(0);
    }
    let pid = l.state.pid;
    let console = l.console.take();
    // Release the lock while the container runs: kill/state/exec need it.
    drop(l.dir);
    let code = super::supervise::supervise(pid, console, !opts.no_subreaper)?;
    log::debug(|| "container exited".into());
    if !opts.keep {
        if let Ok(dir) = ctx.root.open(id) {
            if let Some(st) = dir.read()? {
                super::delete::destroy(dir, &st, Status::Stopped, None)?;
            }
        }
    }
    log::debug(|| "deleted".into());
    Ok(code)
}
