//! `linux.resources` → cgroup v2 files in one directory.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use crate::devices;
use crate::error::{Error, Result};
use crate::files::{self, write};
use crate::resources::{
    blkio_weight_to_io_weight, check_unified_key, pids_max, rdma_line, shares_to_weight, swap_v2,
    v2_limit,
};

/// Apply `r` to `dir`. With `update`, devices are left alone unless `r`
/// lists some. `unified` keys are written last, so they win.
pub(crate) fn apply(dir: &Path, r: &LinuxResources, update: bool) -> Result<()> {
    if let Some(rules) = devices::rules_to_apply(r, update)? {
        devices::apply_v2(dir, &rules)?;
    }
    if let Some(m) = r.memory() {
        memory(dir, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(dir, c)?;
    }
    if let Some(p) = r.pids() {
        write(dir, "pids.max", &pids_max(p.limit()))?;
    }
    if let Some(b) = r.block_io() {
        io(dir, b)?;
    }
    for h in r.hugepage_limits().iter().flatten() {
        let size = h.page_size();
        write(dir, &format!("hugetlb.{size}.max"), &h.limit().to_string())?;
        let rsvd = format!("hugetlb.{size}.rsvd.max");
        if files::exists(dir, &rsvd) {
            write(dir, &rsvd, &h.limit().to_string())?;
        }
    }
    // network classID/priorities have no v2 controller: ignored, as runc does
    for (dev, lim) in r.rdma().iter().flatten() {
        if let Some(line) = rdma_line(dev, lim.hca_handles(), lim.hca_objects()) {
            write(dir, "rdma.max", &line)?;
        }
    }
    if let Some(u) = r.unified() {
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort();
        for (k, v) in keys {
            check_unified_key(k)?;
            write(dir, k, v)?;
        }
    }
    Ok(())
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let swap = swap_v2(m.swap().filter(|&s| s != 0), m.limit().filter(|&l| l != 0))?;
    if let Some(s) = swap {
        if files::exists(dir, "memory.swap.max") {
            write(dir, "memory.swap.max", &s)?;
        } else if s != "max" {
            return Err(Error::InvalidResource {
                resource: "memory.swap",
                reason: "this kernel has no swap accounting (no memory.swap.max)".into(),
            });
        }
    }
    if let Some(l) = m.limit().filter(|&l| l != 0) {
        write(dir, "memory.max", &v2_limit(l))?;
    }
    if let Some(r) = m.reservation().filter(|&r| r != 0) {
        write(dir, "memory.low", &v2_limit(r))?;
    }
    // swappiness, kernel, kernelTCP, disableOOMKiller and useHierarchy have
    // no v2 file: ignored, as runc does (v2 is always hierarchical).
    Ok(())
}

fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    let weight = shares_to_weight(c.shares().unwrap_or(0));
    if weight != 0 {
        write(dir, "cpu.weight", &weight.to_string())?;
    }
    let quota = c.quota().filter(|&q| q != 0);
    let period = c.period().filter(|&p| p != 0);
    if quota.is_some() || period.is_some() {
        let mut v = match quota {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".into(),
        };
        if let Some(p) = period {
            v.push_str(&format!(" {p}"));
        }
        write(dir, "cpu.max", &v)?;
    }
    if let Some(b) = c.burst() {
        write(dir, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write(dir, "cpu.idle", &i.to_string())?;
    }
    // realtimeRuntime/realtimePeriod: v2 has no RT group scheduling; ignored.
    for (value, file) in [(c.cpus(), "cpuset.cpus"), (c.mems(), "cpuset.mems")] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            write(dir, file, v)?;
        }
    }
    Ok(())
}

fn io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let bfq = files::exists(dir, "io.bfq.weight");
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        if bfq {
            write(dir, "io.bfq.weight", &w.to_string())?;
        } else {
            write(dir, "io.weight", &blkio_weight_to_io_weight(w).to_string())?;
        }
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            let dev = format!("{}:{}", wd.major(), wd.minor());
            if bfq {
                write(dir, "io.bfq.weight", &format!("{dev} {w}"))?;
            } else {
                write(
                    dir,
                    "io.weight",
                    &format!("{dev} {}", blkio_weight_to_io_weight(w)),
                )?;
            }
        }
    }
    let lists = [
        (b.throttle_read_bps_device(), "rbps"),
        (b.throttle_write_bps_device(), "wbps"),
        (b.throttle_read_iops_device(), "riops"),
        (b.throttle_write_iops_device(), "wiops"),
    ];
    for (list, key) in lists {
        for t in list.iter().flatten() {
            write(
                dir,
                "io.max",
                &format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}
