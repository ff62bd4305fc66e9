//! Registry client (OCI distribution spec / Docker Registry HTTP API v2).
//!
//! A thin client on `reqwest`: anonymous, Basic and Bearer-token auth with a
//! shared token cache, credentials from Docker's `config.json`, plain HTTP
//! for loopback and `insecure-registries`, `registry-mirrors` for docker.io,
//! bounded retries with backoff, blob streams that resume with `Range`, and
//! byte-exact pushes. `docs/registry.md` says why not `oci-client`.

mod blob;
pub mod challenge;
pub mod endpoint;
mod error;
mod manifest;
mod transport;
mod upload;

use std::path::PathBuf;
use std::sync::Arc;

pub use blob::BlobStream;
pub use error::{ApiError, Error, UrlError};
pub use manifest::{FetchedManifest, ManifestHead, MANIFEST_ACCEPT};

use crate::auth::{self, CredentialStore, Credentials};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

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

/// A registry client. Cheap to clone: clones share the connection pool,
/// credentials and token cache.
#[derive(Clone)]
pub struct Client {
    inner: Arc<transport::Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `config`; reads the credentials file now.
    pub fn new(config: Config) -> Result<Self, Error> {
        let path = config
            .docker_config
            .clone()
            .unwrap_or_else(auth::default_config_path);
        let credentials = CredentialStore::load(&path)?;
        Ok(Self {
            inner: Arc::new(transport::Inner::new(config, credentials)?),
        })
    }

    /// Use `creds` for `registry` from now on (in memory only), e.g. right
    /// after a successful `check_login`.
    pub fn set_credentials(&self, registry: &str, creds: Credentials) {
        self.inner.set_credentials(registry, creds);
    }

    /// The settings this client was built with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Change retry timing (attempts per request, first backoff delay); for
    /// tests and tools that want to fail fast.
    pub fn with_retry(self, attempts: u32, first_delay: std::time::Duration) -> Self {
        let inner = transport::Inner::with_retry(&self.inner, attempts, first_delay);
        Self {
            inner: Arc::new(inner),
        }
    }
}
