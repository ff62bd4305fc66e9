//! Garbage collection: mark everything the image records reach, sweep the
//! rest of the content store and the snapshot directory.
//!
//! Roots are the rows of the `images` and `dangling` tables. From each: the manifest
//! (`target`), the index it was pulled by (`repo_digest`, when that blob is
//! stored), the manifest's config and layer blobs, and the snapshots named by
//! the chain IDs of the config's `rootfs.diff_ids`.
//!
//! Pulls and registrations hold [`StoreLock::shared`] from their first
//! blob write to their metadata commit; GC holds [`StoreLock::exclusive`],
//! so it never sweeps the blobs of a pull that has not committed yet.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::image::{ImageConfiguration, ImageManifest};

use crate::content::ContentStore;
use crate::metadata::{ImageEntry, Metadata};
use crate::snapshot::{chain_ids, Snapshots};
use crate::Digest;

/// Errors from garbage collection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// taking the store lock failed
    #[error("lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// reading the records failed
    #[error(transparent)]
    Metadata(#[from] crate::metadata::Error),
    /// reading or deleting blobs failed
    #[error(transparent)]
    Content(#[from] crate::content::Error),
    /// deleting snapshots failed
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::Error),
}

/// An flock on `<data-root>/gc.lock`: shared for writers, exclusive for GC.
pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    fn take(data_root: &Path, op: rustix::fs::FlockOperation) -> Result<Self, Error> {
        let path = data_root.join("gc.lock");
        let lock_err = |source: io::Error| Error::Lock {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(lock_err)?;
        rustix::fs::flock(&file, op).map_err(|e| lock_err(e.into()))?;
        Ok(Self { _file: file })
    }

    /// Held while adding content that is not yet referenced by a record.
    pub fn shared(data_root: &Path) -> Result<Self, Error> {
        Self::take(data_root, rustix::fs::FlockOperation::LockShared)
    }

    /// Held while collecting.
    pub fn exclusive(data_root: &Path) -> Result<Self, Error> {
        Self::take(data_root, rustix::fs::FlockOperation::LockExclusive)
    }
}

/// What the records reach.
#[derive(Debug, Default)]
pub struct Marked {
    /// blobs to keep
    pub blobs: HashSet<Digest>,
    /// snapshot chain IDs (hex) to keep
    pub snapshots: HashSet<String>,
}

/// What a sweep deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// blobs removed
    pub blobs: Vec<Digest>,
    /// snapshots (chain ID hex) removed
    pub snapshots: Vec<String>,
    /// bytes of blobs removed
    pub blob_bytes: u64,
}

/// Mark everything reachable from `images`.
pub fn mark<'a>(
    content: &ContentStore,
    images: impl IntoIterator<Item = &'a ImageEntry>,
) -> Marked {
    let mut m = Marked::default();
    for entry in images {
        mark_image(content, entry, &mut m);
    }
    m
}

fn mark_image(content: &ContentStore, entry: &ImageEntry, m: &mut Marked) {
    if let Some(d) = &entry.repo_digest {
        m.blobs.insert(d.clone());
    }
    m.blobs.insert(entry.config.clone());
    let Ok(target) = entry.target.digest().to_string().parse::<Digest>() else {
        return;
    };
    m.blobs.insert(target.clone());
    // A record never points at a missing blob, but if one does (disk
    // trouble), keep whatever the rest of the record still reaches.
    if let Some(manifest) = read_json::<ImageManifest>(content, &target) {
        for layer in manifest.layers() {
            if let Ok(d) = layer.digest().to_string().parse() {
                m.blobs.insert(d);
            }
        }
    }
    if let Some(config) = read_json::<ImageConfiguration>(content, &entry.config) {
        let diff_ids: Vec<Digest> = config
            .rootfs()
            .diff_ids()
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect();
        for c in chain_ids(&diff_ids) {
            m.snapshots.insert(c.encoded().to_owned());
        }
    }
}

fn read_json<T: serde::de::DeserializeOwned>(content: &ContentStore, d: &Digest) -> Option<T> {
    let bytes = content.read_to_vec(d).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Delete every blob and snapshot not in `marked`, and leftover temporary
/// snapshot directories (no unpack runs while the exclusive lock is held).
pub fn sweep(
    content: &ContentStore,
    snapshots: &Snapshots,
    marked: &Marked,
) -> Result<Swept, Error> {
    let mut swept = Swept::default();
    for d in content.iter()? {
        if marked.blobs.contains(&d) {
            continue;
        }
        let size = content.size(&d).unwrap_or(0);
        if content.remove(&d)? {
            swept.blob_bytes += size;
            swept.blobs.push(d);
        }
    }
    let (done, temps) = snapshots.list()?;
    for hex in done {
        if !marked.snapshots.contains(&hex) {
            snapshots.remove(&hex)?;
            swept.snapshots.push(hex);
        }
    }
    for t in temps {
        snapshots.remove_dir(&t)?;
    }
    swept.blobs.sort();
    swept.snapshots.sort();
    Ok(swept)
}

/// Mark and sweep under the exclusive lock. `clear_ingest` also drops
/// partial downloads (prune does; plain image removal keeps them so an
/// interrupted pull can still resume).
pub fn collect(
    data_root: &Path,
    metadata: &Metadata,
    content: &ContentStore,
    snapshots: &Snapshots,
    clear_ingest: bool,
) -> Result<Swept, Error> {
    let _lock = StoreLock::exclusive(data_root)?;
    let images = metadata.list()?;
    let dangling = metadata.list_dangling()?;
    let marked = mark(content, images.iter().map(|(_, e)| e).chain(&dangling));
    let swept = sweep(content, snapshots, &marked)?;
    if clear_ingest {
        content.clear_ingest()?;
    }
    tracing::debug!(
        blobs = swept.blobs.len(),
        snapshots = swept.snapshots.len(),
        "gc"
    );
    Ok(swept)
}

#[allow(clippy::unwrap_used)]
#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{Descriptor, MediaType};

    fn oci(d: &Digest) -> oci_spec::image::Digest {
        d.as_str().parse().unwrap()
    }

    /// Store a fake image (config + manifest + one layer blob + its snapshot).
    fn image(content: &ContentStore, snaps: &Snapshots, layers: &[&[u8]]) -> ImageEntry {
        let mut diff_ids = Vec::new();
        let mut descs = Vec::new();
        for l in layers {
            let d = Digest::sha256_of(l);
            content.write_bytes(&d, l).unwrap();
            descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": l.len(), "digest": d}));
            diff_ids.push(d);
        }
        for c in chain_ids(&diff_ids) {
            let t = snaps.temp_dir(&c).unwrap();
            t.commit().unwrap();
        }
        let config = serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}});
        let config = serde_json::to_vec(&config).unwrap();
        let cd = Digest::sha256_of(&config);
        content.write_bytes(&cd, &config).unwrap();
        let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": cd},
            "layers": descs});
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let md = Digest::sha256_of(&manifest);
        content.write_bytes(&md, &manifest).unwrap();
        ImageEntry {
            target: Descriptor::new(MediaType::ImageManifest, manifest.len() as u64, oci(&md)),
            config: cd,
            repo_digest: None,
            created: 0,
        }
    }

    #[test]
    fn sweeps_only_unreferenced() {
        let dir = tempfile::tempdir().unwrap();
        let content = ContentStore::open(&dir.path().join("content")).unwrap();
        let snaps = Snapshots::open(&dir.path().join("snapshots")).unwrap();
        let a = image(&content, &snaps, &[b"base", b"a-top"]);
        let b = image(&content, &snaps, &[b"base", b"b-top"]);
        let stray = Digest::sha256_of(b"stray");
        content.write_bytes(&stray, b"stray").unwrap();
        // both images: only the stray blob goes
        let swept = sweep(&content, &snaps, &mark(&content, [&a, &b])).unwrap();
        assert_eq!(swept.blobs, vec![stray]);
        assert!(swept.snapshots.is_empty());
        assert_eq!(snaps.list().unwrap().0.len(), 3);
        // drop b: its config, manifest, top layer and top snapshot go; base stays
        let swept = sweep(&content, &snaps, &mark(&content, [&a])).unwrap();
        assert_eq!(swept.blobs.len(), 3);
        assert_eq!(swept.snapshots.len(), 1);
        assert!(content.contains(&Digest::sha256_of(b"base")));
        assert_eq!(snaps.list().unwrap().0.len(), 2);
        // nothing left: everything goes
        let swept = sweep(&content, &snaps, &mark(&content, [])).unwrap();
        assert_eq!(swept.blobs.len(), 4);
        assert!(content.iter().unwrap().is_empty());
        assert!(snaps.list().unwrap().0.is_empty());
    }
}
