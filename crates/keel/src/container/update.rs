//! `update [-r resources.json | flags] ID`: apply new `linux.resources`.

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

use super::{Context, Error, Status};

/// runc's `update` flags (values as given on the command line).
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// `-r FILE` (`-` for stdin)
    pub resources: Option<PathBuf>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub kernel_memory: Option<String>,
    pub cpu_shares: Option<u64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// `--cpus 1.5` (quota/period shorthand)
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    /// `--l3-cache-schema L3:...` (the container's resctrl group)
    pub l3_cache_schema: Option<String>,
    /// `--mem-bw-schema MB:...`
    pub mem_bw_schema: Option<String>,
}

/// Parse `512m`, `1g`, `1024`, `-1` into bytes.
pub fn parse_bytes(s: &str) -> Result<i64, Error> {
    let bad = || Error::Invalid(format!("invalid size {s:?}"));
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.trim_end_matches('b').trim_end_matches('i');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    if n < 0.0 {
        return Err(bad());
    }
    Ok((n * mult as f64) as i64)
}

impl UpdateOptions {
    /// The resources object these flags describe.
    fn to_value(&self) -> Result<Value, Error> {
        let mut mem = serde_json::Map::new();
        for (k, v) in [
            ("limit", &self.memory),
            ("reservation", &self.memory_reservation),
            ("swap", &self.memory_swap),
            ("kernel", &self.kernel_memory),
        ] {
            if let Some(v) = v {
                mem.insert(k.into(), json!(parse_bytes(v)?));
            }
        }
        let mut cpu = serde_json::Map::new();
        let (mut quota, mut period) = (self.cpu_quota, self.cpu_period);
        if let Some(c) = self.cpus {
            let p = period.unwrap_or(100_000);
            period = Some(p);
            quota = Some((c * p as f64) as i64);
        }
        let fields: [(&str, Option<Value>); 7] = [
            ("shares", self.cpu_shares.map(|v| json!(v))),
            ("period", period.map(|v| json!(v))),
            ("quota", quota.map(|v| json!(v))),
            ("realtimePeriod", self.cpu_rt_period.map(|v| json!(v))),
            ("realtimeRuntime", self.cpu_rt_runtime.map(|v| json!(v))),
            ("cpus", self.cpuset_cpus.clone().map(Value::from)),
            ("mems", self.cpuset_mems.clone().map(Value::from)),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                cpu.insert(k.into(), v);
            }
        }
        let mut r = serde_json::Map::new();
        if !mem.is_empty() {
            r.insert("memory".into(), Value::Object(mem));
        }
        if !cpu.is_empty() {
            r.insert("cpu".into(), Value::Object(cpu));
        }
        if let Some(p) = self.pids_limit {
            r.insert("pids".into(), json!({"limit": p}));
        }
        if let Some(w) = self.blkio_weight {
            r.insert("blockIO".into(), json!({"weight": w}));
        }
        Ok(Value::Object(r))
    }
}

/// `keel update`.
pub fn update(ctx: &Context, id: &str, opts: &UpdateOptions) -> Result<(), Error> {
    let dir = ctx.root.open(id)?;
    let mut st = dir.load()?;
    if super::status(&st) == Status::Stopped {
        return Err(super::not_running(id));
    }
    let change: Value = match &opts.resources {
        Some(path) => {
            let bytes = if path.as_os_str() == "-" {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)
                    .map_err(Error::io("read stdin"))?;
                v
            } else {
                std::fs::read(path).map_err(Error::io(format!("cannot read {}", path.display())))?
            };
            crate::spec::parse(&bytes, "resources")?
        }
        None => opts.to_value()?,
    };
    // The change alone must be valid resources.
    let _: LinuxResources = crate::spec::parse(change.to_string().as_bytes(), "resources")?;
    let manager = st
        .cgroup
        .clone()
        .ok_or_else(|| Error::Invalid(format!("container {id} has no cgroup")))?;
    // The container's whole resources with the change merged in: applied
    // as one desired state, and remembered for later updates and `state`.
    let mut linux = st.spec.linux().clone().unwrap_or_default();
    let mut merged = serde_json::to_value(linux.resources()).unwrap_or(Value::Null);
    if merged.is_null() {
        merged = json!({});
    }
    merge(&mut merged, &change);
    let full: LinuxResources = crate::spec::parse(merged.to_string().as_bytes(), "resources")?;
    // resctrl first: it is the part that refuses (no group, shared group).
    if opts.l3_cache_schema.is_some() || opts.mem_bw_schema.is_some() {
        let group = st.rdt.as_ref().ok_or(crate::rdt::Error::NoGroup)?;
        let (l3, mb) = (
            opts.l3_cache_schema.as_deref(),
            opts.mem_bw_schema.as_deref(),
        );
        crate::rdt::update(group, l3, mb)?;
        if let Some(mut r) = linux.intel_rdt().clone() {
            if let Some(l3) = l3 {
                r.set_l3_cache_schema(Some(l3.to_owned()));
            }
            if let Some(mb) = mb {
                r.set_mem_bw_schema(Some(mb.to_owned()));
            }
            linux.set_intel_rdt(Some(r));
        }
    }
    manager.update(&full)?;
    linux.set_resources(Some(full));
    st.spec.set_linux(Some(linux));
    dir.write(&st)?;
    Ok(())
}

fn merge(base: &mut Value, change: &Value) {
    match (base, change) {
        (Value::Object(b), Value::Object(c)) => {
            for (k, v) in c {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, c) => *b = c.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn flags_become_resources() {
        let o = UpdateOptions {
            memory: Some("64m".into()),
            pids_limit: Some(10),
            cpus: Some(0.5),
            ..Default::default()
        };
        let v = o.to_value().unwrap();
        assert_eq!(v["memory"]["limit"], 64 << 20);
        assert_eq!(v["pids"]["limit"], 10);
        assert_eq!(v["cpu"]["quota"], 50_000);
        let _: LinuxResources = serde_json::from_value(v).unwrap();
    }
}
