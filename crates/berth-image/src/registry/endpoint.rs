//! Where requests for a registry go: scheme (HTTPS, or plain HTTP for
//! loopback and `insecure-registries`), Docker Hub's API host, and
//! `registry-mirrors` in front of docker.io.

use std::net::IpAddr;

use super::Config;
use crate::reference::{host_of, is_loopback_host, DEFAULT_REGISTRY};

/// Docker Hub's registry API host.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// One base URL requests can be sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://registry-1.docker.io`, `http://127.0.0.1:5000`, a mirror URL
    pub base: String,
    /// the name credentials and tokens are filed under (`docker.io`, a mirror's host)
    pub registry: String,
    /// a pull-through mirror (failures fall through to the next endpoint)
    pub mirror: bool,
}

impl Endpoint {
    /// `{base}/v2/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/{}", self.base, path)
    }
}

/// The endpoints to try, in order, for `registry`: mirrors first for pulls
/// from docker.io, then the registry itself.
pub fn endpoints(config: &Config, registry: &str, pull: bool) -> Vec<Endpoint> {
    let mut out = Vec::new();
    if pull && registry == DEFAULT_REGISTRY {
        for m in &config.registry_mirrors {
            let base = m.trim_end_matches('/').to_owned();
            let base = if base.contains("://") {
                base
            } else {
                format!("https://{base}")
            };
            let host = base.split("://").nth(1).unwrap_or(&base);
            let registry = host.split('/').next().unwrap_or(host).to_owned();
            out.push(Endpoint {
                base,
                registry,
                mirror: true,
            });
        }
    }
    let api_host = if registry == DEFAULT_REGISTRY {
        DOCKER_HUB_API
    } else {
        registry
    };
    let scheme = if plain_http(config, registry) {
        "http"
    } else {
        "https"
    };
    out.push(Endpoint {
        base: format!("{scheme}://{api_host}"),
        registry: registry.to_owned(),
        mirror: false,
    });
    out
}

/// Whether `registry` (host[:port]) is reached over plain HTTP: loopback
/// hosts always (as Docker does), others only when `insecure-registries`
/// names them (host, host:port, or a CIDR containing the host's IP).
pub fn plain_http(config: &Config, registry: &str) -> bool {
    if is_loopback_host(registry) {
        return true;
    }
    let host = host_of(registry);
    let ip = host.parse::<IpAddr>().ok();
    config.insecure_registries.iter().any(|entry| {
        let entry = entry
            .trim()
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        if entry == registry || entry == host {
            return true;
        }
        match (ip, parse_cidr(entry)) {
            (Some(ip), Some((net, bits))) => cidr_contains(net, bits, ip),
            _ => false,
        }
    })
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((addr, bits))
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    let (net, ip, width) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u32::from(n) as u128, u32::from(i) as u128, 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width - u32::from(bits);
    (net >> shift) == (ip >> shift)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(insecure: &[&str], mirrors: &[&str]) -> Config {
        Config {
            insecure_registries: insecure.iter().map(|s| s.to_string()).collect(),
            registry_mirrors: mirrors.iter().map(|s| s.to_string()).collect(),
            ..Config::default()
        }
    }

    #[test]
    fn loopback_is_plain_http_others_need_configuration() {
        let none = config(&[], &[]);
        for r in [
            "127.0.0.1:5000",
            "localhost",
            "localhost:5000",
            "127.9.0.1",
            "[::1]:5000",
        ] {
            assert!(plain_http(&none, r), "{r}");
        }
        for r in [
            "docker.io",
            "10.1.2.3:5000",
            "reg.example:5000",
            "[fe80::1]:5000",
        ] {
            assert!(!plain_http(&none, r), "{r}");
        }
    }

    #[test]
    fn insecure_registries_match_host_port_or_cidr() {
        let c = config(
            &[
                "reg.example:5000",
                "plain.example",
                "10.0.0.0/8",
                "fd00::/8",
            ],
            &[],
        );
        assert!(plain_http(&c, "reg.example:5000"));
        assert!(!plain_http(&c, "reg.example:5001"));
        assert!(plain_http(&c, "plain.example:443"));
        assert!(plain_http(&c, "10.200.3.4:5000"));
        assert!(!plain_http(&c, "11.0.0.1:5000"));
        assert!(plain_http(&c, "[fd00::5]:5000"));
        assert!(!plain_http(&c, "[fe80::1]"));
        assert!(plain_http(&config(&["0.0.0.0/0"], &[]), "8.8.8.8"));
    }

    #[test]
    fn mirrors_come_first_for_docker_hub_pulls_only() {
        let c = config(&[], &["http://127.0.0.1:5001/", "mirror.example"]);
        let eps = endpoints(&c, "docker.io", true);
        let bases: Vec<_> = eps.iter().map(|e| e.base.as_str()).collect();
        assert_eq!(
            bases,
            [
                "http://127.0.0.1:5001",
                "https://mirror.example",
                "https://registry-1.docker.io"
            ]
        );
        assert_eq!(eps[0].registry, "127.0.0.1:5001");
        assert_eq!(eps[2].registry, "docker.io");
        assert_eq!(endpoints(&c, "docker.io", false).len(), 1);
        let local = endpoints(&c, "127.0.0.1:5000", true);
        assert_eq!(local.len(), 1);
        assert_eq!(
            local[0].url("x/manifests/1"),
            "http://127.0.0.1:5000/v2/x/manifests/1"
        );
    }
}
