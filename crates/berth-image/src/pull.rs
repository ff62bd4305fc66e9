//! The pull pipeline.
//!
//! 1. Resolve the reference to a manifest; an index (or Docker manifest list)
//!    is narrowed to the requested platform ([`crate::platform::select`]).
//! 2. Fetch the config; its `rootfs.diff_ids` give the chain IDs that key
//!    the snapshots. Layers whose blob and snapshot are both present are
//!    skipped.
//! 3. The other layers run concurrently (at most [`PARALLEL`] at a time).
//!    Each layer is a single pass: the download task forwards body chunks to
//!    a blocking thread that appends them to the ingest file, hashes them,
//!    and feeds the same bytes to the decompressor and tar unpacker, which
//!    writes a temporary snapshot directory. Layers unpack independently
//!    (each is an overlay lower dir of its own; whiteouts are markers that
//!    need no lower layer), so no layer waits for the ones below it.
//! 4. A layer is committed only when the blob matched its digest (then the
//!    blob is renamed into `blobs/`) and the unpacked stream matched the
//!    config's DiffID (then the snapshot is renamed into place).
//! 5. Manifest (and index) blobs are stored, the blob directory fsynced, and
//!    the image record written last. A failed or interrupted pull leaves no
//!    record, no blob that was not verified, and a partial ingest file from
//!    which the next pull resumes with a Range request.

mod remote;

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;

use bytes::{Buf, Bytes};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use tokio::sync::{mpsc, Semaphore};

use crate::content::{ContentStore, Ingest, Writer};
use crate::snapshot::{chain_ids, Snapshots, TempSnapshot};
use crate::store::{Error, ImageRecord, ImageStore, Platform, PullEvent, PullProgress};
use crate::{unpack, Digest, Reference};

pub use remote::RemoteError;
use remote::{BlobStream, Remote};

/// Layers downloaded and unpacked at the same time.
pub const PARALLEL: usize = 4;

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// One layer of the image being pulled.
#[derive(Clone)]
pub(crate) struct Layer {
    pub desc: Descriptor,
    pub digest: Digest,
    pub diff_id: Digest,
    pub chain: Digest,
}

/// The layers of `manifest` paired with the config's DiffIDs and chain IDs.
pub(crate) fn layers(
    manifest: &ImageManifest,
    config: &ImageConfiguration,
) -> Result<Vec<Layer>, Error> {
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| d.parse::<Digest>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::BadDigest)?;
    if diff_ids.len() != manifest.layers().len() {
        return Err(Error::LayerCount {
            layers: manifest.layers().len(),
            diff_ids: diff_ids.len(),
        });
    }
    let chains = chain_ids(&diff_ids);
    manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .zip(chains)
        .map(|((desc, diff_id), chain)| {
            Ok(Layer {
                desc: desc.clone(),
                digest: oci_digest(desc)?,
                diff_id,
                chain,
            })
        })
        .collect()
}

/// oci-spec's digest type from ours.
pub(crate) fn to_oci_digest(d: &Digest) -> Result<oci_spec::image::Digest, Error> {
    d.as_str()
        .parse()
        .map_err(|_| Error::BadDigest(crate::digest::Error::Format(d.to_string())))
}

/// Our digest type from a descriptor's.
pub(crate) fn oci_digest(desc: &Descriptor) -> Result<Digest, Error> {
    desc.digest().to_string().parse().map_err(Error::BadDigest)
}

fn check_digest(expected: &Digest, actual: Digest) -> Result<(), Error> {
    if &actual != expected {
        return Err(Error::Content(crate::content::Error::DigestMismatch {
            expected: expected.clone(),
            actual,
        }));
    }
    Ok(())
}

/// What the reference resolved to.
struct Resolved {
    /// the platform manifest
    manifest: (Digest, Bytes, String),
    /// the index it was selected from, if any
    index: Option<(Digest, Bytes)>,
    /// the digest the reference named (index or manifest): the RepoDigest
    repo_digest: Digest,
}

async fn resolve(
    remote: &Remote,
    reference: &Reference,
    platform: &Platform,
) -> Result<Resolved, Error> {
    let key = reference.manifest_key();
    let top = remote.manifest(&key).await.map_err(Error::Remote)?;
    let top_digest = Digest::sha256_of(&top.bytes);
    if let Some(want) = &reference.digest {
        check_digest(want, top_digest.clone())?;
    }
    let media_type = media_type_of(&top.media_type, &top.bytes);
    if MANIFEST_TYPES.contains(&media_type.as_str()) {
        return Ok(Resolved {
            manifest: (top_digest.clone(), top.bytes, media_type),
            index: None,
            repo_digest: top_digest,
        });
    }
    if !INDEX_TYPES.contains(&media_type.as_str()) {
        return Err(Error::UnsupportedManifest(media_type));
    }
    let index: ImageIndex = serde_json::from_slice(&top.bytes).map_err(|source| Error::Json {
        what: "image index",
        source,
    })?;
    let desc =
        crate::platform::select(&index, platform).ok_or_else(|| Error::NoMatchingPlatform {
            wanted: platform.to_string(),
            available: crate::platform::available(&index).join(", "),
        })?;
    let digest = oci_digest(desc)?;
    let m = remote
        .manifest(digest.as_str())
        .await
        .map_err(Error::Remote)?;
    check_digest(&digest, Digest::sha256_of(&m.bytes))?;
    let media_type = media_type_of(&m.media_type, &m.bytes);
    if !MANIFEST_TYPES.contains(&media_type.as_str()) {
        return Err(Error::UnsupportedManifest(media_type));
    }
    Ok(Resolved {
        manifest: (digest, m.bytes, media_type),
        index: Some((top_digest.clone(), top.bytes)),
        repo_digest: top_digest,
    })
}

/// The media type from the response header, else the document's own
/// `mediaType` field; schema1 is named so the error can say so.
fn media_type_of(header: &str, bytes: &[u8]) -> String {
    let header = header.split(';').next().unwrap_or("").trim();
    if !header.is_empty() && header != "application/json" && header != "text/plain" {
        return header.to_owned();
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(Probe {
            media_type: Some(t),
            ..
        }) => t,
        Ok(Probe {
            schema_version: Some(1),
            ..
        }) => "application/vnd.docker.distribution.manifest.v1+json".to_owned(),
        Ok(Probe {
            manifests: Some(_), ..
        }) => INDEX_TYPES[0].to_owned(),
        _ => MANIFEST_TYPES[0].to_owned(),
    }
}

/// Pull `reference` into `store`.
pub(crate) async fn pull(
    store: &ImageStore,
    reference: &Reference,
    platform: &Platform,
    progress: &dyn PullProgress,
) -> Result<ImageRecord, Error> {
    let remote = Arc::new(Remote::new(store.registry_client()?, reference));
    let root = store.data_root().to_owned();
    let _lock = tokio::task::spawn_blocking(move || crate::gc::StoreLock::shared(&root))
        .await
        .map_err(Error::Join)??;
    let resolved = resolve(&remote, reference, platform).await?;
    progress.event(PullEvent::Resolved {
        digest: resolved.repo_digest.clone(),
    });
    let (manifest_digest, manifest_bytes, manifest_type) = resolved.manifest;
    let manifest: ImageManifest =
        serde_json::from_slice(&manifest_bytes).map_err(|source| Error::Json {
            what: "image manifest",
            source,
        })?;
    let config_digest = oci_digest(manifest.config())?;
    let config = fetch_config(
        store.content(),
        &remote,
        &config_digest,
        manifest.config().size(),
    )
    .await?;
    let layers = layers(&manifest, &config)?;
    fetch_layers(store, &remote, &layers, progress).await?;

    let content = store.content();
    content.write_bytes(&manifest_digest, &manifest_bytes)?;
    if let Some((d, bytes)) = &resolved.index {
        content.write_bytes(d, bytes)?;
    }
    content.sync()?;
    let target = Descriptor::new(
        MediaType::from(manifest_type.as_str()),
        manifest_bytes.len() as u64,
        to_oci_digest(&manifest_digest)?,
    );
    store.write_record(
        &record_name(reference),
        target,
        config_digest,
        Some(resolved.repo_digest),
    )
}

/// The name a pull records: `repo:tag`, or `repo@digest` when pinned.
pub(crate) fn record_name(reference: &Reference) -> String {
    match &reference.digest {
        Some(d) => format!("{}@{d}", reference.repository_name()),
        None => reference.to_string(),
    }
}

async fn fetch_config(
    content: &ContentStore,
    remote: &Remote,
    digest: &Digest,
    size: u64,
) -> Result<ImageConfiguration, Error> {
    if !content.contains(digest) {
        let mut stream = remote.blob(digest, 0).await.map_err(Error::Remote)?;
        let mut buf = Vec::with_capacity(size as usize);
        while let Some(chunk) = stream.next_chunk().await.map_err(Error::Remote)? {
            buf.extend_from_slice(&chunk);
        }
        content.write_bytes(digest, &buf)?;
    }
    let bytes = content.read_to_vec(digest)?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        what: "image config",
        source,
    })
}

/// Download and unpack every layer that is missing, [`PARALLEL`] at a time.
async fn fetch_layers(
    store: &ImageStore,
    remote: &Arc<Remote>,
    layers: &[Layer],
    progress: &dyn PullProgress,
) -> Result<(), Error> {
    let sem = Arc::new(Semaphore::new(PARALLEL));
    let mut seen = std::collections::HashSet::new();
    let mut jobs = Vec::new();
    for layer in layers {
        if !seen.insert(layer.chain.clone()) {
            continue;
        }
        let need_blob = !store.content().contains(&layer.digest);
        let need_snapshot = !store.snapshots().exists(&layer.chain);
        if !need_blob && !need_snapshot {
            progress.event(PullEvent::LayerExists {
                digest: layer.digest.clone(),
            });
            continue;
        }
        jobs.push(fetch_layer(
            store,
            remote,
            layer.clone(),
            need_snapshot,
            sem.clone(),
            progress,
        ));
    }
    let results = futures_util::future::join_all(jobs).await;
    results.into_iter().collect::<Result<Vec<()>, Error>>()?;
    Ok(())
}

async fn fetch_layer(
    store: &ImageStore,
    remote: &Arc<Remote>,
    layer: Layer,
    need_snapshot: bool,
    sem: Arc<Semaphore>,
    progress: &dyn PullProgress,
) -> Result<(), Error> {
    let _permit = sem.acquire_owned().await.map_err(|_| Error::Cancelled)?;
    let content = store.content().clone();
    let (d, size) = (layer.digest.clone(), layer.desc.size());
    let ingest = tokio::task::spawn_blocking(move || content.writer(&d, Some(size)))
        .await
        .map_err(Error::Join)??;
    let mut writer = match ingest {
        Ingest::Writer(w) => *w,
        Ingest::Exists => {
            if need_snapshot {
                progress.event(PullEvent::LayerExtracting {
                    digest: layer.digest.clone(),
                });
                let (c, s) = (store.content().clone(), store.snapshots().clone());
                tokio::task::spawn_blocking(move || unpack_blob(&c, &s, &layer))
                    .await
                    .map_err(Error::Join)??;
            }
            return Ok(());
        }
    };
    let mut stream = remote
        .blob(&layer.digest, writer.offset())
        .await
        .map_err(Error::Remote)?;
    if stream.offset() != writer.offset() {
        writer.restart()?;
    }
    progress.event(PullEvent::LayerStart {
        digest: layer.digest.clone(),
        total: size,
    });
    let temp = if need_snapshot {
        Some(store.snapshots().temp_dir(&layer.chain)?)
    } else {
        None
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(64);
    let sink_layer = layer.clone();
    let sink = tokio::task::spawn_blocking(move || sink(writer, rx, temp, &sink_layer));
    let sent = forward(&mut stream, tx, &layer, progress).await;
    let sunk = sink.await.map_err(Error::Join)?;
    // A download error explains the sink's read error; otherwise the sink's
    // own failure (digest, unpack) is what closed the channel.
    sent?;
    sunk?;
    progress.event(PullEvent::LayerDone {
        digest: layer.digest.clone(),
    });
    Ok(())
}

/// Move body chunks to the sink, reporting progress about every MiB.
async fn forward(
    stream: &mut BlobStream,
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    layer: &Layer,
    progress: &dyn PullProgress,
) -> Result<(), Error> {
    let total = layer.desc.size();
    let mut done = stream.offset();
    let mut reported = 0;
    loop {
        match stream.next_chunk().await {
            Ok(Some(chunk)) => {
                done += chunk.len() as u64;
                if tx.send(Ok(chunk)).await.is_err() {
                    return Ok(()); // the sink failed; it reports why
                }
                if done - reported >= 1 << 20 || done == total {
                    reported = done;
                    progress.event(PullEvent::LayerProgress {
                        digest: layer.digest.clone(),
                        done,
                        total,
                    });
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = tx.send(Err(io::Error::other("download interrupted"))).await;
                return Err(Error::Remote(e));
            }
        }
    }
    if done == total {
        progress.event(PullEvent::LayerExtracting {
            digest: layer.digest.clone(),
        });
    }
    Ok(())
}

/// The blocking half of a layer: write + hash + unpack in one pass.
fn sink(
    mut writer: Writer,
    rx: mpsc::Receiver<Result<Bytes, io::Error>>,
    temp: Option<TempSnapshot>,
    layer: &Layer,
) -> Result<(), Error> {
    let prefix_len = writer.offset();
    let prefix = if prefix_len > 0 && temp.is_some() {
        let path = writer.ingest_path().to_owned();
        Some(
            File::open(&path)
                .map_err(|source| Error::Io { path, source })?
                .take(prefix_len),
        )
    } else {
        None
    };
    let mut tee = Tee {
        writer: &mut writer,
        rx,
        prefix,
        chunk: Bytes::new(),
        failed: None,
    };
    let unpacked = temp.as_ref().map(|t| {
        let compression = unpack::Compression::from_media_type(layer.desc.media_type().as_ref())?;
        unpack::unpack_layer(&mut tee, compression, t.path(), &unpack::Options::default())
    });
    // Whatever the unpacker left (or all of it), hashed and written.
    let drained = io::copy(&mut tee, &mut io::sink());
    if let Some(e) = tee.failed.take() {
        return Err(e.into());
    }
    drained.map_err(Error::Interrupted)?;
    // The blob's digest first: a corrupt download explains a broken stream.
    writer.commit()?;
    if let (Some(unpacked), Some(temp)) = (unpacked, temp) {
        check_diff_id(layer, unpacked?)?;
        temp.commit()?;
    }
    Ok(())
}

/// The unpacked tar must hash to the diff ID the image config promises.
fn check_diff_id(layer: &Layer, stats: unpack::Stats) -> Result<(), Error> {
    if stats.diff_id != layer.diff_id {
        return Err(Error::DiffIdMismatch {
            layer: layer.digest.clone(),
            expected: layer.diff_id.clone(),
            actual: stats.diff_id,
        });
    }
    Ok(())
}

/// Reads the already-written prefix of a resumed blob, then the channel;
/// channel bytes are appended to the blob (and hashed) as they pass.
struct Tee<'a> {
    writer: &'a mut Writer,
    rx: mpsc::Receiver<Result<Bytes, io::Error>>,
    prefix: Option<io::Take<File>>,
    chunk: Bytes,
    failed: Option<crate::content::Error>,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(p) = &mut self.prefix {
            let n = p.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            self.prefix = None;
        }
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Err(e)) => return Err(e),
                Some(Ok(c)) => {
                    if let Err(e) = self.writer.write(&c) {
                        // The caller takes the real error (with its source)
                        // from `failed`; this one only stops the reader.
                        let msg = e.to_string();
                        self.failed = Some(e);
                        return Err(io::Error::other(msg));
                    }
                    self.chunk = c;
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

/// Unpack a layer whose blob is already in the store (register, load,
/// import, or a pull that finds the blob but not the snapshot).
pub(crate) fn unpack_blob(
    content: &ContentStore,
    snapshots: &Snapshots,
    layer: &Layer,
) -> Result<(), Error> {
    if snapshots.exists(&layer.chain) {
        return Ok(());
    }
    let path = content.path(&layer.digest);
    let file = File::open(&path).map_err(|source| Error::Io { path, source })?;
    let temp = snapshots.temp_dir(&layer.chain)?;
    let compression = unpack::Compression::from_media_type(layer.desc.media_type().as_ref())?;
    let stats = unpack::unpack_layer(file, compression, temp.path(), &unpack::Options::default())?;
    check_diff_id(layer, stats)?;
    temp.commit()?;
    Ok(())
}

#[allow(clippy::unwrap_used)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_detection() {
        assert_eq!(
            media_type_of("application/vnd.oci.image.index.v1+json", b"{}"),
            INDEX_TYPES[0]
        );
        assert_eq!(
            media_type_of("", br#"{"schemaVersion":1}"#),
            "application/vnd.docker.distribution.manifest.v1+json"
        );
        assert_eq!(
            media_type_of("application/json", br#"{"schemaVersion":2,"manifests":[]}"#),
            INDEX_TYPES[0]
        );
        assert_eq!(
            media_type_of("", br#"{"schemaVersion":2,"config":{}}"#),
            MANIFEST_TYPES[0]
        );
    }

    #[test]
    fn record_names() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(record_name(&r), "docker.io/library/busybox:latest");
        let d = Digest::sha256_of(b"x");
        let r = Reference::parse(&format!("127.0.0.1:5000/a/b:1@{d}")).unwrap();
        assert_eq!(record_name(&r), format!("127.0.0.1:5000/a/b@{d}"));
    }
}
