//! `pause` / `resume`: the cgroup freezer.

use super::{Context, Error, Status};

fn manager(st: &crate::state::State) -> Result<&berth_cgroups::Manager, Error> {
    st.cgroup
        .as_ref()
        .ok_or_else(|| Error::Invalid(format!("container {} has no cgroup", st.id)))
}

/// `keel pause ID`.
pub fn pause(ctx: &Context, id: &str) -> Result<(), Error> {
    let dir = ctx.root.open(id)?;
    let st = dir.load()?;
    match super::status(&st) {
        Status::Running | Status::Created => manager(&st)?.freeze()?,
        s => {
            return Err(Error::Invalid(format!(
                "cannot pause container {id}: it is {s}"
            )))
        }
    }
    Ok(())
}

/// `keel resume ID`.
pub fn resume(ctx: &Context, id: &str) -> Result<(), Error> {
    let dir = ctx.root.open(id)?;
    let st = dir.load()?;
    match super::status(&st) {
        Status::Paused => manager(&st)?.thaw()?,
        s => {
            return Err(Error::Invalid(format!(
                "cannot resume container {id}: it is {s}, not paused"
            )))
        }
    }
    Ok(())
}
