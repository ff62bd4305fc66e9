//! `push`: upload an image's blobs and its manifest, byte for byte as the
//! store holds them (the manifest is never re-serialised, so its digest on
//! the registry is the digest in the store).

use std::path::{Path, PathBuf};

use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::registry::{self, Client, DOCKER_MANIFEST_LIST, OCI_INDEX};
use crate::{store, Digest, ImageStore, Reference};

/// Blobs uploaded at the same time.
const PARALLEL_UPLOADS: usize = 3;

/// Errors from `push`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// the image is not in the store
    #[error(transparent)]
    Store(#[from] store::Error),
    /// the registry refused or failed
    #[error(transparent)]
    Registry(#[from] registry::Error),
    /// a stored blob could not be read
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// the stored manifest does not hash to its digest
    #[error("stored manifest {digest} is corrupt: its content hashes to {actual}")]
    Corrupt { digest: Digest, actual: Digest },
    /// the stored manifest cannot be read as a manifest
    #[error("stored manifest {digest} is not a valid image manifest or index")]
    Manifest {
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    /// a descriptor in the manifest has a malformed digest
    #[error("manifest {manifest} lists an invalid digest")]
    Digest {
        manifest: String,
        #[source]
        source: crate::digest::Error,
    },
}

/// What happened to each blob, for progress lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// the registry already had it ("Layer already exists")
    Exists { digest: Digest },
    /// upload started
    Uploading { digest: Digest, size: u64 },
    /// uploaded ("Pushed")
    Pushed { digest: Digest },
    /// a manifest was stored under a tag or digest
    Manifest { digest: Digest, size: u64 },
}

/// Receives push progress (called from any task; must be cheap).
pub trait PushProgress: Send + Sync {
    fn event(&self, event: PushEvent);
}

/// Progress nobody watches.
pub struct NoProgress;
impl PushProgress for NoProgress {
    fn event(&self, _: PushEvent) {}
}

/// Push the image `reference` names to the registry it names; returns the
/// manifest digest the registry now serves.
pub async fn push(
    store: &ImageStore,
    client: &Client,
    reference: &Reference,
) -> Result<Digest, Error> {
    push_with_progress(store, client, reference, &NoProgress).await
}

/// `push`, reporting each blob.
pub async fn push_with_progress(
    store: &ImageStore,
    client: &Client,
    reference: &Reference,
    progress: &dyn PushProgress,
) -> Result<Digest, Error> {
    let image = store.resolve(&reference.to_string())?;
    let target = image.target.digest().to_string();
    let digest = parse_digest(&target, &target)?;
    let media_type = image.target.media_type().to_string();
    let blob_path = |d: &Digest| store.blob_path(d);
    push_manifest(
        client,
        reference,
        &digest,
        &media_type,
        &blob_path,
        progress,
    )
    .await
}

/// Push the manifest (or index) `digest` and everything it references,
/// reading blobs from `blob_path(digest)`; the manifest goes under
/// `reference`'s tag (or its digest when it has no tag).
pub async fn push_manifest(
    client: &Client,
    reference: &Reference,
    digest: &Digest,
    media_type: &str,
    blob_path: &(dyn Fn(&Digest) -> PathBuf + Sync),
    progress: &dyn PushProgress,
) -> Result<Digest, Error> {
    let bytes = read_verified(&blob_path(digest), digest)?;
    let shape: Shape = serde_json::from_slice(&bytes).map_err(|source| Error::Manifest {
        digest: digest.clone(),
        source,
    })?;
    let media_type = shape
        .media_type
        .clone()
        .unwrap_or_else(|| media_type.to_owned());
    if media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST || !shape.manifests.is_empty()
    {
        for child in &shape.manifests {
            let child_digest = parse_digest(&child.digest, digest.as_str())?;
            let child_type = child.media_type.clone().unwrap_or_default();
            let pinned = reference.with_digest(child_digest.clone());
            Box::pin(push_manifest(
                client,
                &pinned,
                &child_digest,
                &child_type,
                blob_path,
                progress,
            ))
            .await?;
        }
    } else {
        let blobs = shape.config.iter().chain(shape.layers.iter());
        let blobs: Vec<(Digest, u64)> = blobs
            .map(|d| Ok((parse_digest(&d.digest, digest.as_str())?, d.size)))
            .collect::<Result<_, Error>>()?;
        stream::iter(blobs)
            .map(|(d, size)| push_blob(client, reference, d, size, blob_path, progress))
            .buffer_unordered(PARALLEL_UPLOADS)
            .try_collect::<Vec<()>>()
            .await?;
    }
    let pushed = client.put_manifest(reference, &bytes, &media_type).await?;
    progress.event(PushEvent::Manifest {
        digest: pushed.clone(),
        size: bytes.len() as u64,
    });
    Ok(pushed)
}

async fn push_blob(
    client: &Client,
    reference: &Reference,
    digest: Digest,
    size: u64,
    blob_path: &(dyn Fn(&Digest) -> PathBuf + Sync),
    progress: &dyn PushProgress,
) -> Result<(), Error> {
    if client.blob_exists(reference, &digest).await? {
        progress.event(PushEvent::Exists { digest });
        return Ok(());
    }
    progress.event(PushEvent::Uploading {
        digest: digest.clone(),
        size,
    });
    client
        .upload_blob(reference, &digest, size, &blob_path(&digest))
        .await?;
    progress.event(PushEvent::Pushed { digest });
    Ok(())
}

/// The parts of a manifest or index that name other content.
#[derive(serde::Deserialize)]
struct Shape {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Desc>,
    #[serde(default)]
    layers: Vec<Desc>,
    #[serde(default)]
    manifests: Vec<Desc>,
}

#[derive(serde::Deserialize)]
struct Desc {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    size: u64,
}

fn parse_digest(text: &str, manifest: &str) -> Result<Digest, Error> {
    text.parse().map_err(|source| Error::Digest {
        manifest: manifest.to_owned(),
        source,
    })
}

fn read_verified(path: &Path, digest: &Digest) -> Result<Vec<u8>, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    if digest.algorithm() == "sha256" {
        let actual = Digest::sha256_of(&bytes);
        if &actual != digest {
            return Err(Error::Corrupt {
                digest: digest.clone(),
                actual,
            });
        }
    }
    Ok(bytes)
}
