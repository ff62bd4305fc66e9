//! Stats from cgroup v2 files.

use std::path::Path;

use super::{hugepage_sizes, BlkioEntry, Hugetlb, MemoryEntry, Stats};
use crate::error::Result;
use crate::files::{keyed_value, parse_flat_keyed, read_optional, read_u64};

/// Collect the stats of the cgroup `d`; missing files read as 0.
pub(crate) fn collect(d: &Path) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(c) = read_optional(d, "cpu.stat")? {
        let get = |k: &str| keyed_value(&c, k).unwrap_or(0);
        s.cpu.usage.total = get("usage_usec") * 1000;
        s.cpu.usage.user = get("user_usec") * 1000;
        s.cpu.usage.kernel = get("system_usec") * 1000;
        s.cpu.throttling.periods = get("nr_periods");
        s.cpu.throttling.throttled_periods = get("nr_throttled");
        s.cpu.throttling.throttled_time = get("throttled_usec") * 1000;
    }
    memory(d, &mut s)?;
    s.pids.current = read_u64(d, "pids.current")?.unwrap_or(0);
    s.pids.limit = read_u64(d, "pids.max")?
        .filter(|&v| v != u64::MAX)
        .unwrap_or(0);
    if let Some(c) = read_optional(d, "io.stat")? {
        let (bytes, ios) = parse_io_stat(&c);
        s.blkio.io_service_bytes_recursive = bytes;
        s.blkio.io_serviced_recursive = ios;
    }
    for size in hugepage_sizes() {
        let Some(usage) = read_u64(d, &format!("hugetlb.{size}.current"))? else {
            continue;
        };
        let events = read_optional(d, &format!("hugetlb.{size}.events"))?;
        let h = Hugetlb {
            usage,
            max: 0,
            failcnt: events.and_then(|e| keyed_value(&e, "max")).unwrap_or(0),
        };
        s.hugetlb.insert(size, h);
    }
    Ok(s)
}

fn memory(d: &Path, s: &mut Stats) -> Result<()> {
    let events = read_optional(d, "memory.events")?;
    let usage = MemoryEntry {
        usage: read_u64(d, "memory.current")?.unwrap_or(0),
        max: read_u64(d, "memory.peak")?.unwrap_or(0),
        limit: read_u64(d, "memory.max")?.unwrap_or(0),
        failcnt: events
            .as_deref()
            .and_then(|e| keyed_value(e, "max"))
            .unwrap_or(0),
    };
    // v1 reports swap as memory+swap; do the same
    let swap_usage = read_u64(d, "memory.swap.current")?.unwrap_or(0);
    let swap_limit = read_u64(d, "memory.swap.max")?.unwrap_or(0);
    s.memory.swap = MemoryEntry {
        usage: swap_usage.saturating_add(usage.usage),
        max: read_u64(d, "memory.swap.peak")?.unwrap_or(0),
        limit: if swap_limit == u64::MAX || usage.limit == u64::MAX {
            u64::MAX
        } else {
            swap_limit + usage.limit
        },
        failcnt: 0,
    };
    s.memory.usage = usage;
    if let Some(c) = read_optional(d, "memory.stat")? {
        s.memory.raw = parse_flat_keyed(&c).into_iter().collect();
        s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
    }
    Ok(())
}

/// `io.stat` → (bytes, operations) entries, ops `Read` and `Write`.
pub(crate) fn parse_io_stat(content: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for line in content.lines() {
        let mut f = line.split_whitespace();
        let Some((maj, min)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse::<u64>() else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    (bytes, ios)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_stat() {
        let (b, i) = parse_io_stat("8:0 rbytes=4096 wbytes=512 rios=2 wios=1 dbytes=0 dios=0\n");
        assert_eq!(b.len(), 2);
        assert_eq!((b[1].op.as_str(), b[1].value), ("Write", 512));
        assert_eq!((i[0].op.as_str(), i[0].value, i[0].major), ("Read", 2, 8));
    }
}
