//! Freezing and thawing: v1 `freezer.state`, v2 `cgroup.freeze` +
//! `cgroup.events`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::files::{self, keyed_value};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Sleep a little longer each time, up to 10 ms.
fn backoff(step: &mut Duration) {
    std::thread::sleep(*step);
    *step = (*step * 2).min(Duration::from_millis(10));
}

fn timeout(dir: &Path, state: &'static str) -> Error {
    Error::FreezeTimeout {
        path: dir.to_path_buf(),
        state,
        millis: TIMEOUT.as_millis() as u64,
    }
}

/// v1: write `FROZEN`/`THAWED` until `freezer.state` reads it back. A
/// cgroup stays `FREEZING` while a task cannot be stopped yet (e.g. in
/// vfork); writing `FROZEN` again retries it.
pub(crate) fn v1_set(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let start = Instant::now();
    let mut step = Duration::from_micros(50);
    loop {
        files::write(dir, "freezer.state", want)?;
        let got = files::read(dir, "freezer.state")?;
        if got.trim() == want {
            return Ok(());
        }
        if start.elapsed() > TIMEOUT {
            if frozen {
                // Leave it running rather than half frozen; the timeout is
                // the error to report, so a failed thaw adds nothing.
                let _ = files::write(dir, "freezer.state", "THAWED");
            }
            return Err(timeout(dir, want));
        }
        backoff(&mut step);
    }
}

/// v1: whether `freezer.state` says FROZEN (FREEZING counts as not yet).
pub(crate) fn v1_is_frozen(dir: &Path) -> Result<bool> {
    Ok(files::read_optional(dir, "freezer.state")?.is_some_and(|s| s.trim() == "FROZEN"))
}

/// v2: write `cgroup.freeze` and wait for `cgroup.events` to say `frozen`.
pub(crate) fn v2_set(dir: &Path, frozen: bool) -> Result<()> {
    let v = if frozen { "1" } else { "0" };
    files::write(dir, "cgroup.freeze", v)?;
    let start = Instant::now();
    let mut step = Duration::from_micros(50);
    loop {
        if v2_is_frozen(dir)? == frozen {
            return Ok(());
        }
        if start.elapsed() > TIMEOUT {
            if frozen {
                // As in v1: undo the half freeze, report the timeout.
                let _ = files::write(dir, "cgroup.freeze", "0");
            }
            return Err(timeout(dir, if frozen { "frozen 1" } else { "frozen 0" }));
        }
        backoff(&mut step);
    }
}

/// v2: `frozen 1` in `cgroup.events`.
pub(crate) fn v2_is_frozen(dir: &Path) -> Result<bool> {
    let events = files::read(dir, "cgroup.events")?;
    Ok(keyed_value(&events, "frozen") == Some(1))
}
