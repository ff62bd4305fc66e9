//! Stats from cgroup v1 files.

use std::path::Path;

use super::{hugepage_sizes, BlkioEntry, Hugetlb, MemoryEntry, Stats};
use crate::error::Result;
use crate::files::{self, parse_flat_keyed, read_optional, read_u64};
use crate::v1::resources::Dirs;

const NANOS_PER_SEC: u64 = 1_000_000_000;

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Collect what each mounted controller offers; missing files read as 0.
pub(crate) fn collect(dirs: &Dirs) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(d) = dirs.get("cpuacct") {
        cpuacct(d, &mut s)?;
    }
    if let Some(d) = dirs.get("cpu") {
        if let Some(c) = read_optional(d, "cpu.stat")? {
            let kv = parse_flat_keyed(&c);
            let get = |k: &str| {
                kv.iter()
                    .find_map(|(n, v)| (n == k).then_some(*v))
                    .unwrap_or(0)
            };
            s.cpu.throttling.periods = get("nr_periods");
            s.cpu.throttling.throttled_periods = get("nr_throttled");
            s.cpu.throttling.throttled_time = get("throttled_time");
        }
    }
    if let Some(d) = dirs.get("memory") {
        s.memory.usage = memory_entry(d, "memory")?;
        s.memory.swap = memory_entry(d, "memory.memsw")?;
        s.memory.kernel = memory_entry(d, "memory.kmem")?;
        s.memory.kernel_tcp = memory_entry(d, "memory.kmem.tcp")?;
        if let Some(c) = read_optional(d, "memory.stat")? {
            s.memory.raw = parse_flat_keyed(&c).into_iter().collect();
            s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
        }
    }
    if let Some(d) = dirs.get("pids") {
        s.pids.current = read_u64(d, "pids.current")?.unwrap_or(0);
        s.pids.limit = read_u64(d, "pids.max")?
            .filter(|&v| v != u64::MAX)
            .unwrap_or(0);
    }
    if let Some(d) = dirs.get("blkio") {
        s.blkio.io_service_bytes_recursive =
            blkio_file(d, "blkio.throttle.io_service_bytes_recursive")?;
        s.blkio.io_serviced_recursive = blkio_file(d, "blkio.throttle.io_serviced_recursive")?;
    }
    if let Some(d) = dirs.get("hugetlb") {
        for size in hugepage_sizes() {
            let f = |n: &str| read_u64(d, &format!("hugetlb.{size}.{n}"));
            let h = Hugetlb {
                usage: f("usage_in_bytes")?.unwrap_or(0),
                max: f("max_usage_in_bytes")?.unwrap_or(0),
                failcnt: f("failcnt")?.unwrap_or(0),
            };
            s.hugetlb.insert(size, h);
        }
    }
    Ok(s)
}

fn cpuacct(d: &Path, s: &mut Stats) -> Result<()> {
    s.cpu.usage.total = read_u64(d, "cpuacct.usage")?.unwrap_or(0);
    if let Some(c) = read_optional(d, "cpuacct.usage_percpu")? {
        s.cpu.usage.percpu = c
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
    }
    if let Some(c) = read_optional(d, "cpuacct.stat")? {
        let (user, system) = cpuacct_stat_nanos(&c, clock_ticks());
        s.cpu.usage.user = user;
        s.cpu.usage.kernel = system;
    }
    Ok(())
}

/// `cpuacct.stat` (`user N` / `system N` in clock ticks) → nanoseconds.
pub(crate) fn cpuacct_stat_nanos(content: &str, ticks: u64) -> (u64, u64) {
    let kv = parse_flat_keyed(content);
    let get = |k: &str| {
        kv.iter()
            .find_map(|(n, v)| (n == k).then_some(*v))
            .unwrap_or(0)
    };
    let conv = |t: u64| t.saturating_mul(NANOS_PER_SEC) / ticks.max(1);
    (conv(get("user")), conv(get("system")))
}

fn memory_entry(d: &Path, prefix: &str) -> Result<MemoryEntry> {
    let f = |n: &str| read_u64(d, &format!("{prefix}.{n}"));
    Ok(MemoryEntry {
        usage: f("usage_in_bytes")?.unwrap_or(0),
        max: f("max_usage_in_bytes")?.unwrap_or(0),
        limit: f("limit_in_bytes")?.unwrap_or(0),
        failcnt: f("failcnt")?.unwrap_or(0),
    })
}

fn blkio_file(d: &Path, file: &str) -> Result<Vec<BlkioEntry>> {
    Ok(files::read_optional(d, file)?
        .map(|c| parse_blkio(&c))
        .unwrap_or_default())
}

/// `8:0 Read 4096` lines (the `Total` line is dropped).
pub(crate) fn parse_blkio(content: &str) -> Vec<BlkioEntry> {
    content
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [dev, op, value] = f[..] else { return None };
            let (maj, min) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op: op.to_owned(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuacct_stat() {
        assert_eq!(
            cpuacct_stat_nanos("user 150\nsystem 50\n", 100),
            (1_500_000_000, 500_000_000)
        );
    }

    #[test]
    fn blkio_lines() {
        let e = parse_blkio("8:0 Read 4096\n8:0 Write 0\n8:0 Sync 1\nTotal 4097\n");
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].major, e[0].minor, e[0].op.as_str(), e[0].value),
            (8, 0, "Read", 4096)
        );
    }
}
