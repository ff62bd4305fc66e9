//! The image store facade: the one type berthd (and the CLI today) holds.
//! OWNER: store work. Signatures here are the contract used by `bundle`,
//! `archive`, `push` and the CLI; change one only together with its callers.
//!
//! Layout under `--data-root`: `content/` ([`crate::content`]),
//! `snapshots/` ([`crate::snapshot`]), `metadata.redb`
//! ([`crate::metadata`], which also draws the schema), `gc.lock`
//! ([`crate::gc`]).

use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};

use crate::content::ContentStore;
use crate::metadata::{ImageEntry, Metadata};
use crate::pull::{self, Layer};
use crate::snapshot::{self, Mount, Snapshots};
use crate::{registry, Digest, Reference};

mod lookup;
use lookup::{by_id_prefix, by_name, familiar, id_hex, short_id};

/// Errors from image store operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// no image matches the name or id
    #[error("No such image: {0}")]
    NotFound(String),
    /// not yet written
    #[error("{0} is not implemented yet")]
    Unimplemented(&'static str),
    /// a short id matches more than one image
    #[error("ambiguous image id prefix {0:?}: it matches more than one image")]
    Ambiguous(String),
    /// `rmi` by id of an image with several names, without `-f`
    #[error("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories")]
    Conflict { id: String },
    /// a name that is not a valid reference
    #[error(transparent)]
    Reference(#[from] crate::reference::Error),
    /// a digest in a manifest or config does not parse
    #[error("invalid digest in image metadata")]
    BadDigest(#[source] crate::digest::Error),
    /// a manifest, index or config is not valid JSON of its kind
    #[error("invalid {what}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// manifest has a different number of layers than the config's diff_ids
    #[error("image manifest has {layers} layers but its config lists {diff_ids} diff_ids")]
    LayerCount { layers: usize, diff_ids: usize },
    /// schema1, or something that is not an image manifest at all
    #[error("unsupported manifest media type {0:?} (schema1 images are not supported: re-push them with a current client)")]
    UnsupportedManifest(String),
    /// the index has no manifest for the requested platform
    #[error(
        "no matching manifest for {wanted} in the manifest list entries (available: {available})"
    )]
    NoMatchingPlatform { wanted: String, available: String },
    /// an unpacked layer does not hash to the config's diff_id
    #[error(
        "layer {layer}: unpacked content {actual} does not match the config's diff_id {expected}"
    )]
    DiffIdMismatch {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },
    /// the download broke off
    #[error("layer download interrupted")]
    Interrupted(#[source] std::io::Error),
    /// talking to the registry failed
    #[error(transparent)]
    Remote(pull::RemoteError),
    /// a file operation failed
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// a background task failed
    #[error("pull task failed")]
    Join(#[source] tokio::task::JoinError),
    /// the pull was cancelled
    #[error("pull cancelled")]
    Cancelled,
    /// content store
    #[error(transparent)]
    Content(#[from] crate::content::Error),
    /// metadata database
    #[error(transparent)]
    Metadata(#[from] crate::metadata::Error),
    /// snapshots
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::Error),
    /// garbage collection
    #[error(transparent)]
    Gc(#[from] crate::gc::Error),
    /// layer unpacking
    #[error("unpacking layer")]
    Unpack(#[from] crate::unpack::Error),
}

/// Where the store lives and how it reaches registries.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `--data-root` (content/, snapshots/, metadata.redb live under it)
    pub data_root: PathBuf,
    /// registry settings
    pub registry: registry::Config,
}

/// An image as the store records it: one of its names, or a dangling
/// (untagged, `<none>:<none>`) image.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// full normalized reference, e.g. `docker.io/library/busybox:latest`
    /// (or `docker.io/library/busybox@sha256:…` for digest-only pulls);
    /// empty for a dangling image (see [`ImageRecord::is_dangling`])
    pub name: String,
    /// the platform-specific manifest this name resolves to
    pub target: Descriptor,
    /// the index/manifest-list digest the name was pulled by, if any (RepoDigest)
    pub repo_digest: Option<Digest>,
    /// the image id: the config's digest
    pub id: Digest,
    /// when the name was recorded (unix seconds)
    pub created: u64,
}

impl ImageRecord {
    /// An image without any name (`<none>:<none>`).
    pub fn is_dangling(&self) -> bool {
        self.name.is_empty()
    }
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
    LayerProgress {
        digest: Digest,
        done: u64,
        total: u64,
    },
    /// downloaded and verified; extraction begins
    LayerExtracting { digest: Digest },
    /// extracted
    LayerDone { digest: Digest },
}

/// Receives pull progress (called from any task; must be cheap).
pub trait PullProgress: Send + Sync {
    fn event(&self, event: PullEvent);
}

/// A [`PullProgress`] that ignores everything (`pull -q`, tests).
pub struct NoProgress;

impl PullProgress for NoProgress {
    fn event(&self, _event: PullEvent) {}
}

/// Docker's `Untagged:`/`Deleted:` lines from `rmi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(Digest),
}

/// The image store.
pub struct ImageStore {
    config: StoreConfig,
    content: ContentStore,
    snapshots: Snapshots,
    metadata: Metadata,
    /// built on first pull (reads the credentials file), then shared so the
    /// token cache and connection pool are too
    client: std::sync::Mutex<Option<registry::Client>>,
}

impl ImageStore {
    /// Open (creating if needed) the store under `config.data_root`.
    pub fn open(config: StoreConfig) -> Result<Self, Error> {
        let root = &config.data_root;
        std::fs::create_dir_all(root).map_err(|source| Error::Io {
            path: root.clone(),
            source,
        })?;
        let content = ContentStore::open(&root.join("content"))?;
        let snapshots = Snapshots::open(&root.join("snapshots"))?;
        let metadata = Metadata::open(&root.join("metadata.redb"))?;
        Ok(Self {
            config,
            content,
            snapshots,
            metadata,
            client: std::sync::Mutex::new(None),
        })
    }

    /// The registry client, created on first use.
    pub fn registry_client(&self) -> Result<registry::Client, Error> {
        let mut slot = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = &*slot {
            return Ok(c.clone());
        }
        let c = registry::Client::new(self.config.registry.clone()).map_err(Error::Remote)?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// The content store (blobs).
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// The unpacked layers.
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// Pull `reference` for `platform`, reporting progress.
    pub async fn pull(
        &self,
        reference: &Reference,
        platform: &Platform,
        progress: &dyn PullProgress,
    ) -> Result<ImageRecord, Error> {
        pull::pull(self, reference, platform, progress).await
    }

    /// Find an image by name (`busybox`, `busybox:1`, full ref, `name@digest`),
    /// full or short image id (config digest).
    pub fn resolve(&self, name_or_id: &str) -> Result<ImageRecord, Error> {
        let not_found = || Error::NotFound(name_or_id.to_owned());
        let all = self.list()?;
        if let Some(hex) = id_hex(name_or_id) {
            // A full id wins outright; a bare hex prefix only if no name matches.
            if hex.len() == 64 || name_or_id.starts_with("sha256:") {
                return by_id_prefix(&all, hex)?.ok_or_else(not_found);
            }
        }
        if let Ok(r) = Reference::parse(name_or_id) {
            if let Some(rec) = by_name(&all, &r) {
                return Ok(rec);
            }
        }
        match id_hex(name_or_id) {
            Some(hex) => by_id_prefix(&all, hex)?.ok_or_else(not_found),
            None => Err(not_found()),
        }
    }

    /// Every name of every image (sorted by name), then every dangling
    /// image (empty name, sorted by id).
    pub fn list(&self) -> Result<Vec<ImageRecord>, Error> {
        let named = self.metadata.list()?.into_iter();
        let dangling = self.metadata.list_dangling()?.into_iter();
        Ok(named
            .map(|(name, e)| record(name, e))
            .chain(dangling.map(|e| record(String::new(), e)))
            .collect())
    }

    /// The dangling images (no name), sorted by id.
    pub fn dangling(&self) -> Result<Vec<ImageRecord>, Error> {
        Ok(self
            .metadata
            .list_dangling()?
            .into_iter()
            .map(|e| record(String::new(), e))
            .collect())
    }

    /// The image's manifest.
    pub fn manifest(&self, image: &ImageRecord) -> Result<ImageManifest, Error> {
        self.read_json(&pull::oci_digest(&image.target)?, "image manifest")
    }

    /// The image's config (its digest is the image id).
    pub fn config(&self, image: &ImageRecord) -> Result<ImageConfiguration, Error> {
        self.read_json(&image.id, "image config")
    }

    /// Read a stored JSON blob (a manifest or config) and parse it.
    fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        digest: &Digest,
        what: &'static str,
    ) -> Result<T, Error> {
        let bytes = self.content.read_to_vec(digest)?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Json { what, source })
    }

    fn layers(&self, image: &ImageRecord) -> Result<Vec<Layer>, Error> {
        pull::layers(&self.manifest(image)?, &self.config(image)?)
    }

    /// Unpacked layer directories, bottom layer first (overlay lowerdirs are
    /// given top first: reverse this). A snapshot that has gone missing is
    /// unpacked again from its blob.
    pub fn layer_dirs(&self, image: &ImageRecord) -> Result<Vec<PathBuf>, Error> {
        let layers = self.layers(image)?;
        if layers.iter().any(|l| !self.snapshots.exists(&l.chain)) {
            let _lock = crate::gc::StoreLock::shared(self.data_root())?;
            unpack_all(&self.content, &self.snapshots, &layers)?;
        }
        Ok(layers
            .iter()
            .map(|l| self.snapshots.path(&l.chain))
            .collect())
    }

    /// The mounts for a container's root filesystem: the image's layers as
    /// overlay lower dirs and `container_dir/{upper,work}` (created here) as
    /// its writable layer. Perform them with [`crate::snapshot::mount`].
    pub fn prepare_rw(
        &self,
        image: &ImageRecord,
        container_dir: &Path,
    ) -> Result<Vec<Mount>, Error> {
        let lowers = self.layer_dirs(image)?;
        let (upper, work) = (container_dir.join("upper"), container_dir.join("work"));
        for d in [&upper, &work] {
            std::fs::create_dir_all(d).map_err(|source| Error::Io {
                path: d.clone(),
                source,
            })?;
        }
        Ok(snapshot::overlay_mounts(&lowers, &upper, &work))
    }

    /// Path of a blob in the content store.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.content.path(digest)
    }

    /// Add a blob (verified against `digest`) from a file or reader.
    pub fn ingest_blob(
        &self,
        digest: &Digest,
        reader: &mut dyn std::io::Read,
    ) -> Result<(), Error> {
        let _lock = crate::gc::StoreLock::shared(self.data_root())?;
        self.content.ingest_reader(digest, None, reader)?;
        Ok(())
    }

    /// Register `name` → manifest descriptor whose manifest, config and layer
    /// blobs are already in the content store; unpacks missing layers.
    /// Used by pull, load and import.
    pub fn register(&self, name: &Reference, target: Descriptor) -> Result<ImageRecord, Error> {
        self.register_as(Some(name), target)
    }

    /// [`ImageStore::register`] without a name: the image is kept as a
    /// dangling image (`import` without REF, `load` of an untagged entry),
    /// unless a name already has its id. The record's name is empty.
    pub fn register_untagged(&self, target: Descriptor) -> Result<ImageRecord, Error> {
        self.register_as(None, target)
    }

    fn register_as(
        &self,
        name: Option<&Reference>,
        target: Descriptor,
    ) -> Result<ImageRecord, Error> {
        let _lock = crate::gc::StoreLock::shared(self.data_root())?;
        let manifest: ImageManifest =
            self.read_json(&pull::oci_digest(&target)?, "image manifest")?;
        let config_digest = pull::oci_digest(manifest.config())?;
        let config: ImageConfiguration = self.read_json(&config_digest, "image config")?;
        let layers = pull::layers(&manifest, &config)?;
        for layer in &layers {
            if !self.content.contains(&layer.digest) {
                return Err(Error::Content(crate::content::Error::NotFound(
                    layer.digest.clone(),
                )));
            }
        }
        unpack_all(&self.content, &self.snapshots, &layers)?;
        self.content.sync()?;
        match name {
            Some(name) => self.write_record(&pull::record_name(name), target, config_digest, None),
            None => {
                let entry = ImageEntry {
                    target,
                    config: config_digest,
                    repo_digest: None,
                    created: crate::metadata::now(),
                };
                self.metadata.put_dangling(&entry)?;
                Ok(record(String::new(), entry))
            }
        }
    }

    /// Write (or replace) a record; everything it references must be stored.
    /// The image the name had before stays as a dangling image when no
    /// other name has it (Docker keeps it too; `image prune` removes it).
    pub(crate) fn write_record(
        &self,
        name: &str,
        target: Descriptor,
        config: Digest,
        repo_digest: Option<Digest>,
    ) -> Result<ImageRecord, Error> {
        let entry = ImageEntry {
            target,
            config,
            repo_digest,
            created: crate::metadata::now(),
        };
        self.metadata.put(name, &entry)?;
        Ok(record(name.to_owned(), entry))
    }

    /// `tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<(), Error> {
        let src = self.resolve(source)?;
        self.write_record(
            &pull::record_name(target),
            src.target,
            src.id,
            src.repo_digest,
        )?;
        Ok(())
    }

    /// `rmi`: untag, and delete the image (and unreferenced blobs/snapshots)
    /// when no name is left.
    pub fn remove(&self, name_or_id: &str, force: bool) -> Result<Vec<Removed>, Error> {
        let image = self.resolve(name_or_id)?;
        let all = self.list()?;
        let same_id: Vec<String> = all
            .iter()
            .filter(|r| r.id == image.id && !r.is_dangling())
            .map(|r| r.name.clone())
            .collect();
        let by_name = !image.is_dangling()
            && Reference::parse(name_or_id)
                .ok()
                .and_then(|r| by_name(&all, &r))
                .is_some_and(|r| r.name == image.name);
        let names = if by_name {
            vec![image.name.clone()]
        } else if same_id.len() > 1 && !force {
            return Err(Error::Conflict {
                id: short_id(&image.id),
            });
        } else {
            same_id.clone()
        };
        let mut out: Vec<Removed> = self
            .metadata
            .delete(&names)?
            .into_iter()
            .map(|n| Removed::Untagged(familiar(&n)))
            .collect();
        if names.len() == same_id.len() {
            self.metadata
                .delete_dangling(std::slice::from_ref(&image.id))?;
            out.push(Removed::Deleted(image.id.clone()));
        }
        self.gc(false)?;
        Ok(out)
    }

    /// `image prune` (`all`: unused images too, not just dangling ones).
    /// The store does not know which images containers use: `all` removes
    /// every image not in `in_use` (see [`ImageStore::prune_except`]).
    pub fn prune(&self, all: bool) -> Result<Vec<Removed>, Error> {
        self.prune_except(all, &[])
    }

    /// `image prune`, keeping images whose id is in `in_use`: without
    /// `all` the dangling images, with `all` every image. Then unreferenced
    /// blobs, snapshots and partial downloads are collected.
    pub fn prune_except(&self, all: bool, in_use: &[Digest]) -> Result<Vec<Removed>, Error> {
        let mut out = Vec::new();
        let victims: Vec<ImageRecord> = self
            .list()?
            .into_iter()
            .filter(|r| (all || r.is_dangling()) && !in_use.contains(&r.id))
            .collect();
        let names: Vec<String> = victims
            .iter()
            .filter(|r| !r.is_dangling())
            .map(|r| r.name.clone())
            .collect();
        for n in self.metadata.delete(&names)? {
            out.push(Removed::Untagged(familiar(&n)));
        }
        let mut ids: Vec<Digest> = victims.into_iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        self.metadata.delete_dangling(&ids)?;
        out.extend(ids.into_iter().map(Removed::Deleted));
        self.gc(true)?;
        Ok(out)
    }

    /// Collect unreferenced blobs and snapshots.
    pub fn gc(&self, clear_ingest: bool) -> Result<crate::gc::Swept, Error> {
        Ok(crate::gc::collect(
            self.data_root(),
            &self.metadata,
            &self.content,
            &self.snapshots,
            clear_ingest,
        )?)
    }

    /// The data root.
    pub fn data_root(&self) -> &Path {
        &self.config.data_root
    }
}

/// Unpack missing layers from stored blobs, a few at a time.
fn unpack_all(
    content: &ContentStore,
    snapshots: &Snapshots,
    layers: &[Layer],
) -> Result<(), Error> {
    let missing: Vec<&Layer> = layers
        .iter()
        .filter(|l| !snapshots.exists(&l.chain))
        .collect();
    for batch in missing.chunks(pull::PARALLEL) {
        std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|l| s.spawn(move || pull::unpack_blob(content, snapshots, l)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(Error::Cancelled)))
                .collect::<Result<Vec<()>, Error>>()
        })?;
    }
    Ok(())
}

fn record(name: String, e: ImageEntry) -> ImageRecord {
    ImageRecord {
        name,
        target: e.target,
        repo_digest: e.repo_digest,
        id: e.config,
        created: e.created,
    }
}

#[allow(clippy::unwrap_used)]
#[cfg(test)]
mod tests {
    use super::*;

    /// berthd holds the store in an `Arc` and spawns pulls on tokio.
    #[allow(dead_code)]
    fn store_and_pull_future_are_send(store: &ImageStore, r: &Reference, p: &Platform) {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        send_sync(store);
        send(store.pull(r, p, &NoProgress));
    }
}
