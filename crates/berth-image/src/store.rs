//! The image store facade: the one type berthd (and the CLI today) holds.
//! OWNER: store work. Signatures here are the contract used by `bundle`,
//! `archive`, `push` and the CLI; change one only together with its callers.

use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};

use crate::{registry, Digest, Reference};

/// Errors from image store operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// no image matches the name or id
    #[error("No such image: {0}")]
    NotFound(String),
    /// not yet written
    #[error("{0} is not implemented yet")]
    Unimplemented(&'static str),
}

/// Where the store lives and how it reaches registries.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `--data-root` (content/, snapshots/, metadata.redb live under it)
    pub data_root: PathBuf,
    /// registry settings
    pub registry: registry::Config,
}

/// A named image as the store records it.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// full normalized reference, e.g. `docker.io/library/busybox:latest`
    /// (or `docker.io/library/busybox@sha256:…` for digest-only pulls)
    pub name: String,
    /// the platform-specific manifest this name resolves to
    pub target: Descriptor,
    /// the index/manifest-list digest the name was pulled by, if any (RepoDigest)
    pub repo_digest: Option<Digest>,
}

/// Target platform for pulls (`--platform os/arch[/variant]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// Progress of a pull, for progress bars or plain lines.
#[derive(Debug, Clone)]
pub enum PullEvent {
    /// the manifest was resolved
    Resolved { digest: Digest },
    /// a layer is already present
    LayerExists { digest: Digest },
    /// a layer started downloading (`total` bytes)
    LayerStart { digest: Digest, total: u64 },
    /// bytes downloaded so far
    LayerProgress { digest: Digest, done: u64, total: u64 },
    /// downloaded and verified; extraction begins
    LayerExtracting { digest: Digest },
    /// extracted
    LayerDone { digest: Digest },
}

/// Receives pull progress (called from any task; must be cheap).
pub trait PullProgress: Send + Sync {
    fn event(&self, event: PullEvent);
}

/// Docker's `Untagged:`/`Deleted:` lines from `rmi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(Digest),
}

/// The image store.
pub struct ImageStore {
    _config: StoreConfig,
}

impl ImageStore {
    /// Open (creating if needed) the store under `config.data_root`.
    pub fn open(config: StoreConfig) -> Result<Self, Error> {
        Ok(Self { _config: config })
    }
    /// Pull `reference` for `platform`, reporting progress.
    pub async fn pull(
        &self,
        reference: &Reference,
        platform: &Platform,
        progress: &dyn PullProgress,
    ) -> Result<ImageRecord, Error> {
        let _ = (reference, platform, progress);
        Err(Error::Unimplemented("pull"))
    }
    /// Find an image by name (`busybox`, `busybox:1`, full ref, `name@digest`),
    /// full or short image id (config digest).
    pub fn resolve(&self, name_or_id: &str) -> Result<ImageRecord, Error> {
        Err(Error::NotFound(name_or_id.to_owned()))
    }
    /// Every named image.
    pub fn list(&self) -> Result<Vec<ImageRecord>, Error> {
        Ok(Vec::new())
    }
    /// The image's manifest.
    pub fn manifest(&self, image: &ImageRecord) -> Result<ImageManifest, Error> {
        let _ = image;
        Err(Error::Unimplemented("manifest"))
    }
    /// The image's config (its digest is the image id).
    pub fn config(&self, image: &ImageRecord) -> Result<ImageConfiguration, Error> {
        let _ = image;
        Err(Error::Unimplemented("config"))
    }
    /// Unpacked layer directories, bottom layer first (overlay lowerdirs are
    /// given top first: reverse this).
    pub fn layer_dirs(&self, image: &ImageRecord) -> Result<Vec<PathBuf>, Error> {
        let _ = image;
        Err(Error::Unimplemented("layer_dirs"))
    }
    /// Path of a blob in the content store.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        PathBuf::from(digest.as_str())
    }
    /// Add a blob (verified against `digest`) from a file or reader.
    pub fn ingest_blob(&self, digest: &Digest, reader: &mut dyn std::io::Read) -> Result<(), Error> {
        let _ = (digest, reader);
        Err(Error::Unimplemented("ingest_blob"))
    }
    /// Register `name` → manifest descriptor whose manifest, config and layer
    /// blobs are already in the content store; unpacks missing layers.
    /// Used by pull, load and import.
    pub fn register(&self, name: &Reference, target: Descriptor) -> Result<ImageRecord, Error> {
        let _ = (name, target);
        Err(Error::Unimplemented("register"))
    }
    /// `tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<(), Error> {
        let _ = (source, target);
        Err(Error::Unimplemented("tag"))
    }
    /// `rmi`: untag, and delete the image (and unreferenced blobs/snapshots)
    /// when no name is left.
    pub fn remove(&self, name_or_id: &str, force: bool) -> Result<Vec<Removed>, Error> {
        let _ = (name_or_id, force);
        Err(Error::Unimplemented("remove"))
    }
    /// `image prune` (`all`: unused images too, not just dangling ones).
    pub fn prune(&self, all: bool) -> Result<Vec<Removed>, Error> {
        let _ = all;
        Err(Error::Unimplemented("prune"))
    }
    /// The data root.
    pub fn data_root(&self) -> &Path {
        &self._config.data_root
    }
}
