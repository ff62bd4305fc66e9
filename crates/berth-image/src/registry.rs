//! Registry client (OCI distribution spec / Docker Registry HTTP API v2).
//! OWNER: registry work. Replace this stub; keep `Config` and the method
//! names the rest of the crate uses (see the module docs in the issue split).

use std::path::PathBuf;

/// How to reach registries (keys as in Docker's daemon.json).
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `insecure-registries`: hosts (host[:port]) or CIDRs reached over plain HTTP
    pub insecure_registries: Vec<String>,
    /// `registry-mirrors`: base URLs tried before docker.io
    pub registry_mirrors: Vec<String>,
    /// credentials file (default `~/.docker/config.json`)
    pub docker_config: Option<PathBuf>,
}
