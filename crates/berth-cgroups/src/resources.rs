//! Conversions shared by the v1 and v2 resource appliers (runc's rules).

use crate::error::{Error, Result};

/// cgroup v1 `cpu.shares` → v2 `cpu.weight`, runc 1.1's linear map of
/// [2, 262144] onto [1, 10000] (1024 → 39). 0 means "not set".
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// v1 `blkio.weight` [10, 1000] → v2 `io.weight` [1, 10000].
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// A v1-style limit (`-1` = unlimited) as a v2 file value.
pub fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// The `pids.max` value for OCI `pids.limit` (0 or negative = unlimited),
/// the same file in v1 and v2.
pub fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".into()
    }
}

/// The v2 `memory.swap.max` value for OCI `memory.swap` (memory+swap, v1
/// semantics) and `memory.limit`; `None` = leave swap alone.
pub fn swap_v2(swap: Option<i64>, limit: Option<i64>) -> Result<Option<String>> {
    let bad = |reason: &str| Error::InvalidResource {
        resource: "memory.swap",
        reason: reason.to_owned(),
    };
    match (swap, limit) {
        // unlimited memory with swap unset: swap unlimited too
        (None | Some(0), Some(-1)) => Ok(Some("max".into())),
        (None | Some(0), _) => Ok(None),
        (Some(s), _) if s < 0 => Ok(Some("max".into())),
        (Some(_), None | Some(0)) | (Some(_), Some(-1)) => {
            Err(bad("a swap limit needs a memory limit"))
        }
        (Some(s), Some(l)) if s < l => Err(bad("memory+swap must be >= the memory limit")),
        (Some(s), Some(l)) => Ok(Some((s - l).to_string())),
    }
}

/// Validate a `linux.resources.unified` key: a file name in the cgroup dir.
pub fn check_unified_key(key: &str) -> Result<()> {
    if key.is_empty() || key.contains('/') || key.starts_with('.') || !key.contains('.') {
        return Err(Error::InvalidResource {
            resource: "unified",
            reason: format!("{key:?} is not a cgroup interface file name"),
        });
    }
    Ok(())
}

/// `rdma.max` line for one device.
pub fn rdma_line(dev: &str, handles: Option<u32>, objects: Option<u32>) -> Option<String> {
    let mut s = dev.to_owned();
    if let Some(h) = handles {
        s.push_str(&format!(" hca_handle={h}"));
    }
    if let Some(o) = objects {
        s.push_str(&format!(" hca_object={o}"));
    }
    (handles.is_some() || objects.is_some()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_matches_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(1 << 30), 10_000);
    }

    #[test]
    fn blkio_weight() {
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
    }

    #[test]
    fn swap_conversion() {
        assert_eq!(swap_v2(None, Some(100)).ok(), Some(None));
        assert_eq!(swap_v2(Some(300), Some(100)).ok(), Some(Some("200".into())));
        assert_eq!(swap_v2(Some(100), Some(100)).ok(), Some(Some("0".into())));
        assert_eq!(swap_v2(Some(-1), Some(100)).ok(), Some(Some("max".into())));
        assert_eq!(swap_v2(None, Some(-1)).ok(), Some(Some("max".into())));
        assert!(swap_v2(Some(50), Some(100)).is_err());
        assert!(swap_v2(Some(50), None).is_err());
    }

    #[test]
    fn unified_keys() {
        assert!(check_unified_key("memory.high").is_ok());
        assert!(check_unified_key("../memory.high").is_err());
        assert!(check_unified_key("cgroup").is_err());
    }

    #[test]
    fn rdma() {
        assert_eq!(
            rdma_line("mlx4_0", Some(2), Some(2000)).as_deref(),
            Some("mlx4_0 hca_handle=2 hca_object=2000")
        );
        assert_eq!(rdma_line("x", None, None), None);
    }
}
