//! `linux.resources` → cgroup v1 files, one applier per controller.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNetwork, LinuxResources};

use crate::devices;
use crate::error::{Error, Result};
use crate::files::{self, write};
use crate::resources::{pids_max, rdma_line};

/// Subsystem name → cgroup dir.
pub(crate) type Dirs = BTreeMap<String, PathBuf>;

fn need<'a>(dirs: &'a Dirs, controller: &str, resource: &'static str) -> Result<&'a Path> {
    dirs.get(controller)
        .map(PathBuf::as_path)
        .ok_or_else(|| Error::ControllerMissing {
            resource,
            controller: controller.to_owned(),
        })
}

/// Apply `r`. With `update`, devices are left alone unless `r` lists some.
pub(crate) fn apply(dirs: &Dirs, r: &LinuxResources, update: bool) -> Result<()> {
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(Error::UnifiedOnV1);
    }
    if let Some(rules) = devices::rules_to_apply(r, update)? {
        devices::apply_v1(need(dirs, "devices", "devices")?, &rules)?;
    }
    if let Some(m) = r.memory() {
        memory(dirs, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(dirs, c)?;
        cpuset(dirs, c)?;
    }
    if let Some(p) = r.pids() {
        write(
            need(dirs, "pids", "pids.limit")?,
            "pids.max",
            &pids_max(p.limit()),
        )?;
    }
    if let Some(b) = r.block_io() {
        blkio(dirs, b)?;
    }
    for h in r.hugepage_limits().iter().flatten() {
        let dir = need(dirs, "hugetlb", "hugepageLimits")?;
        let size = h.page_size();
        write(
            dir,
            &format!("hugetlb.{size}.limit_in_bytes"),
            &h.limit().to_string(),
        )?;
        let rsvd = format!("hugetlb.{size}.rsvd.limit_in_bytes");
        if files::exists(dir, &rsvd) {
            write(dir, &rsvd, &h.limit().to_string())?;
        }
    }
    if let Some(n) = r.network() {
        network(dirs, n)?;
    }
    for (dev, lim) in r.rdma().iter().flatten() {
        if let Some(line) = rdma_line(dev, lim.hca_handles(), lim.hca_objects()) {
            write(need(dirs, "rdma", "rdma")?, "rdma.max", &line)?;
        }
    }
    Ok(())
}

/// memory.limit_in_bytes and memory.memsw.limit_in_bytes are ordered so the
/// kernel never sees memsw < limit.
fn memory(dirs: &Dirs, m: &LinuxMemory) -> Result<()> {
    let wants = m.limit().is_some()
        || m.swap().is_some()
        || m.reservation().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true)
        || m.kernel_tcp().is_some()
        || m.use_hierarchy().is_some();
    if !wants {
        return Ok(());
    }
    let dir = need(dirs, "memory", "memory")?;
    const LIMIT: &str = "memory.limit_in_bytes";
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    let limit = m.limit().filter(|&l| l != 0);
    let mut swap = m.swap().filter(|&s| s != 0);
    if limit == Some(-1) && swap.is_none() && files::exists(dir, MEMSW) {
        swap = Some(-1);
    }
    let swap_first = match (limit, swap) {
        (Some(_), Some(-1)) => true,
        (Some(_), Some(s)) => {
            let cur = files::read_u64(dir, LIMIT)?.unwrap_or(u64::MAX);
            cur < s as u64
        }
        _ => false,
    };
    let set_swap = || match swap {
        Some(s) => write(dir, MEMSW, &s.to_string()),
        None => Ok(()),
    };
    let set_limit = || match limit {
        Some(l) => write(dir, LIMIT, &l.to_string()),
        None => Ok(()),
    };
    if swap_first {
        set_swap()?;
        set_limit()?;
    } else {
        set_limit()?;
        set_swap()?;
    }
    if let Some(r) = m.reservation().filter(|&r| r != 0) {
        write(dir, "memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if let Some(t) = m.kernel_tcp().filter(|&t| t != 0) {
        write(dir, "memory.kmem.tcp.limit_in_bytes", &t.to_string())?;
    }
    // memory.kernel is deprecated by the kernel (kmem accounting can no
    // longer be limited on its own): ignored, as runc does.
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::InvalidResource {
                resource: "memory.swappiness",
                reason: format!("{s} is not in 0..=100"),
            });
        }
        write(dir, "memory.swappiness", &s.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        write(dir, "memory.oom_control", "1")?;
    }
    if let Some(h) = m.use_hierarchy() {
        write(dir, "memory.use_hierarchy", if h { "1" } else { "0" })?;
    }
    Ok(())
}

fn cpu(dirs: &Dirs, c: &LinuxCpu) -> Result<()> {
    let wants = c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.burst().is_some()
        || c.realtime_period().is_some()
        || c.realtime_runtime().is_some()
        || c.idle().is_some();
    if !wants {
        return Ok(());
    }
    let dir = need(dirs, "cpu", "cpu")?;
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        write(dir, "cpu.shares", &s.to_string())?;
    }
    let quota = c.quota().filter(|&q| q != 0);
    // A smaller period can be refused (EINVAL) until the quota fits: retry
    // it after the quota in that case.
    let mut period_pending = None;
    if let Some(p) = c.period().filter(|&p| p != 0) {
        match write(dir, "cpu.cfs_period_us", &p.to_string()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && quota.is_some() => {
                period_pending = Some(p)
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(q) = quota {
        write(dir, "cpu.cfs_quota_us", &q.to_string())?;
        if let Some(p) = period_pending {
            write(dir, "cpu.cfs_period_us", &p.to_string())?;
        }
    }
    if let Some(b) = c.burst() {
        write(dir, "cpu.cfs_burst_us", &b.to_string())?;
    }
    if let Some(p) = c.realtime_period().filter(|&p| p != 0) {
        write(dir, "cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(r) = c.realtime_runtime().filter(|&r| r != 0) {
        write(dir, "cpu.rt_runtime_us", &r.to_string())?;
    }
    if let Some(i) = c.idle() {
        write(dir, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

fn cpuset(dirs: &Dirs, c: &LinuxCpu) -> Result<()> {
    for (value, file) in [(c.cpus(), "cpuset.cpus"), (c.mems(), "cpuset.mems")] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            write(need(dirs, "cpuset", "cpu.cpus/mems")?, file, v)?;
        }
    }
    Ok(())
}

fn blkio(dirs: &Dirs, b: &LinuxBlockIo) -> Result<()> {
    let lists = [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
        ),
    ];
    let wants = b.weight().is_some()
        || b.leaf_weight().is_some()
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || lists
            .iter()
            .any(|(l, _)| l.as_ref().is_some_and(|v| !v.is_empty()));
    if !wants {
        return Ok(());
    }
    let dir = need(dirs, "blkio", "blockIO")?;
    // CFQ's blkio.weight, or BFQ's blkio.bfq.weight on newer kernels
    let bfq = !files::exists(dir, "blkio.weight") && files::exists(dir, "blkio.bfq.weight");
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        let f = if bfq {
            "blkio.bfq.weight"
        } else {
            "blkio.weight"
        };
        write(dir, f, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
        write(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for wd in b.weight_device().iter().flatten() {
        let dev = format!("{}:{}", wd.major(), wd.minor());
        if let Some(w) = wd.weight() {
            let f = if bfq {
                "blkio.bfq.weight_device"
            } else {
                "blkio.weight_device"
            };
            write(dir, f, &format!("{dev} {w}"))?;
        }
        if let Some(w) = wd.leaf_weight() {
            write(dir, "blkio.leaf_weight_device", &format!("{dev} {w}"))?;
        }
    }
    for (list, file) in lists {
        for t in list.iter().flatten() {
            write(
                dir,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

fn network(dirs: &Dirs, n: &LinuxNetwork) -> Result<()> {
    if let Some(id) = n.class_id() {
        write(
            need(dirs, "net_cls", "network.classID")?,
            "net_cls.classid",
            &id.to_string(),
        )?;
    }
    for p in n.priorities().iter().flatten() {
        let dir = need(dirs, "net_prio", "network.priorities")?;
        write(
            dir,
            "net_prio.ifpriomap",
            &format!("{} {}", p.name(), p.priority()),
        )?;
    }
    Ok(())
}
