//! `berth bundle IMAGE DIR [COMMAND…]`, `berth unbundle DIR…`.

use anyhow::Context;
use berth_image::bundle::{self, BundleOptions, NetworkMode};
use berth_image::store::ImageStore;

use crate::cli::{BundleArgs, UnbundleArgs};

pub fn bundle(store: &ImageStore, args: &BundleArgs) -> anyhow::Result<()> {
    let opts = options(args)?;
    let info = bundle::create_bundle(store, &args.image, &args.dir, &opts)?;
    println!("{}", info.id);
    Ok(())
}

pub fn unbundle(args: &UnbundleArgs) -> anyhow::Result<()> {
    for dir in &args.dirs {
        bundle::remove_bundle(dir)?;
    }
    Ok(())
}

/// The flags as library options, `docker run`'s way.
pub fn options(args: &BundleArgs) -> anyhow::Result<BundleOptions> {
    let network = match args.network.as_str() {
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        other => anyhow::bail!("network mode {other:?} is not supported yet (use none or host)"),
    };
    let entrypoint = args.entrypoint.as_ref().map(|e| {
        if e.is_empty() {
            Vec::new()
        } else {
            vec![e.clone()]
        }
    });
    let memory = args.memory.as_deref().map(parse_bytes).transpose()?;
    Ok(BundleOptions {
        entrypoint,
        cmd: args.command.clone(),
        env: args.env.iter().map(|e| from_environment(e)).collect(),
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        hostname: args.hostname.clone(),
        tty: args.tty,
        read_only: args.read_only,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        network,
        memory,
        pids_limit: args.pids_limit.filter(|l| *l > 0),
        id: args.id.clone(),
    })
}

/// `-e NAME` takes NAME's value from our own environment (and drops it
/// when unset), as the Docker CLI does.
fn from_environment(entry: &str) -> String {
    if entry.contains('=') {
        return entry.to_owned();
    }
    match std::env::var(entry) {
        Ok(value) => format!("{entry}={value}"),
        Err(_) => entry.to_owned(),
    }
}

/// `512m`, `1g`, `1048576`: binary units, as `docker run -m`.
pub fn parse_bytes(text: &str) -> anyhow::Result<i64> {
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (number, shift) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 10),
        Some('m') => (&lower[..lower.len() - 1], 20),
        Some('g') => (&lower[..lower.len() - 1], 30),
        Some('t') => (&lower[..lower.len() - 1], 40),
        _ => (lower, 0),
    };
    let value: f64 = number
        .trim()
        .parse()
        .with_context(|| format!("invalid size: {text:?}"))?;
    if value < 0.0 {
        anyhow::bail!("invalid size: {text:?}");
    }
    Ok((value * (1u64 << shift) as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        let cases = [
            ("1024", 1024),
            ("1k", 1024),
            ("64m", 64 << 20),
            ("1g", 1 << 30),
            ("2GB", 2 << 30),
            ("10b", 10),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_bytes(text).expect(text), bytes, "{text}");
        }
        assert!(parse_bytes("lots").is_err());
    }
}
