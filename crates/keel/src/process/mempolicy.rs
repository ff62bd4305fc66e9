//! `linux.memoryPolicy`: the container's NUMA memory policy, set with
//! `set_mempolicy(2)` by init just before the security step (the policy is
//! inherited across `execve` and by every child).

use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

/// Highest node number accepted (the kernel's largest `MAX_NUMNODES` is 1024).
const MAX_NODES: usize = 1024;

/// A bad `linux.memoryPolicy`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// the node list is not "N", "N-M" items separated by commas
    #[error("linux.memoryPolicy.nodes {nodes:?}: {why}")]
    Nodes { nodes: String, why: String },
    /// the mode and the node list do not fit together
    #[error("linux.memoryPolicy: {0}")]
    Invalid(String),
    /// the kernel refused the policy
    #[error("linux.memoryPolicy: set_mempolicy({mode})")]
    Syscall {
        mode: String,
        #[source]
        source: std::io::Error,
    },
}

/// A validated policy, ready for the syscall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    name: String,
    /// mode with the flag bits or'ed in
    mode: i32,
    /// the nodemask, 64 nodes per word
    mask: Vec<u64>,
}

impl Policy {
    /// Check a spec's policy: node list syntax, and which modes need nodes.
    pub fn from_spec(p: &LinuxMemoryPolicy) -> Result<Self, Error> {
        let nodes = p.nodes().as_deref().unwrap_or("").trim();
        let mask = parse_nodes(nodes)?;
        let empty = mask.iter().all(|w| *w == 0);
        let mode = p.mode();
        let name = mode.to_string();
        match mode {
            MemoryPolicyModeType::MpolDefault | MemoryPolicyModeType::MpolLocal if !empty => {
                return Err(Error::Invalid(format!("{name} takes no nodes")));
            }
            MemoryPolicyModeType::MpolBind
            | MemoryPolicyModeType::MpolInterleave
            | MemoryPolicyModeType::MpolPreferredMany
            | MemoryPolicyModeType::MpolWeightedInterleave
                if empty =>
            {
                return Err(Error::Invalid(format!("{name} needs nodes")));
            }
            _ => {}
        }
        let flags = p.flags().as_deref().unwrap_or_default();
        let has = |f| flags.contains(&f);
        if has(MemoryPolicyFlagType::MpolFStaticNodes)
            && has(MemoryPolicyFlagType::MpolFRelativeNodes)
        {
            return Err(Error::Invalid(
                "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other".into(),
            ));
        }
        let bits = flags.iter().fold(0, |acc, f| acc | flag_bits(*f));
        Ok(Self {
            name,
            mode: mode_number(mode) | bits,
            mask,
        })
    }

    /// `set_mempolicy(2)` for the calling thread (init is single-threaded).
    pub fn apply(&self) -> Result<(), Error> {
        let (ptr, maxnode) = if self.mask.is_empty() {
            (std::ptr::null(), 0usize)
        } else {
            // the kernel reads maxnode - 1 bits
            (self.mask.as_ptr(), self.mask.len() * 64 + 1)
        };
        // SAFETY: `ptr` is null or points to `mask.len()` words, which cover
        // the `maxnode - 1` bits the kernel reads; nothing is retained.
        let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, self.mode, ptr, maxnode) };
        if r != 0 {
            return Err(Error::Syscall {
                mode: self.name.clone(),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }
}

/// Validate and apply `linux.memoryPolicy` when the spec has one.
pub fn apply(spec: &oci_spec::runtime::Spec) -> Result<(), Error> {
    match spec
        .linux()
        .as_ref()
        .and_then(|l| l.memory_policy().as_ref())
    {
        Some(p) => Policy::from_spec(p)?.apply(),
        None => Ok(()),
    }
}

fn mode_number(m: MemoryPolicyModeType) -> i32 {
    match m {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    }
}

fn flag_bits(f: MemoryPolicyFlagType) -> i32 {
    match f {
        MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
        MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
    }
}

/// "0-3,7" → a bitmask; "" → no words.
fn parse_nodes(nodes: &str) -> Result<Vec<u64>, Error> {
    let bad = |why: String| Error::Nodes {
        nodes: nodes.to_owned(),
        why,
    };
    let mut mask: Vec<u64> = Vec::new();
    if nodes.is_empty() {
        return Ok(mask);
    }
    for item in nodes.split(',') {
        let item = item.trim();
        let num = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| bad(format!("{s:?} is not a node number")))
        };
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(item)?, num(item)?),
        };
        if lo > hi {
            return Err(bad(format!("range {item:?} is backwards")));
        }
        if hi >= MAX_NODES {
            return Err(bad(format!("node {hi} is above {}", MAX_NODES - 1)));
        }
        if mask.len() <= hi / 64 {
            mask.resize(hi / 64 + 1, 0);
        }
        for n in lo..=hi {
            mask[n / 64] |= 1 << (n % 64);
        }
    }
    Ok(mask)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(json: serde_json::Value) -> Result<Policy, Error> {
        let p: LinuxMemoryPolicy = serde_json::from_value(json).unwrap();
        Policy::from_spec(&p)
    }

    #[test]
    fn node_lists() {
        assert_eq!(parse_nodes("").unwrap(), Vec::<u64>::new());
        assert_eq!(parse_nodes("0-3,7").unwrap(), vec![0b1000_1111]);
        assert_eq!(parse_nodes("65").unwrap(), vec![0, 2]);
        for bad in ["x", "3-1", "1,,2", "2000", "-1"] {
            let e = parse_nodes(bad).unwrap_err().to_string();
            assert!(e.starts_with("linux.memoryPolicy.nodes"), "{e}");
        }
    }

    #[test]
    fn modes_and_flags() {
        let p = policy(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0",
            "flags": ["MPOL_F_STATIC_NODES"]}))
        .unwrap();
        assert_eq!(p.mode, 2 | 1 << 15);
        assert!(policy(serde_json::json!({"mode": "MPOL_BIND"}))
            .unwrap_err()
            .to_string()
            .contains("MPOL_BIND needs nodes"));
        assert!(policy(serde_json::json!({"mode": "MPOL_LOCAL", "nodes": "1"})).is_err());
        assert!(
            policy(serde_json::json!({"mode": "MPOL_INTERLEAVE", "nodes": "0",
            "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}))
            .is_err()
        );
        assert!(policy(serde_json::json!({"mode": "MPOL_PREFERRED"})).is_ok());
    }
}
