//! Reading an OCI image layout (`index.json`, `blobs/<alg>/<hex>`): each
//! index entry names a manifest, or a nested index from which the host's
//! platform is chosen. Names come from `io.containerd.image.name`, else from
//! `org.opencontainers.image.ref.name` when it is a full reference, else from
//! a docker-archive `manifest.json` beside it.

use std::io::{BufReader, Read};
use std::os::fd::OwnedFd;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use super::{io_err, json_err, open_in, Error, NAME_ANNOTATION, REF_NAME_ANNOTATION};
use crate::pull::oci_digest;
use crate::store::{ImageStore, Platform};
use crate::{Digest, Reference};

fn is_index(desc: &Descriptor) -> bool {
    let mt = desc.media_type().to_string();
    mt == super::OCI_INDEX || mt == "application/vnd.docker.distribution.manifest.list.v2+json"
}

fn blob_rel(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.encoded())
}

fn read_blob(root: &OwnedFd, d: &Digest) -> Result<Vec<u8>, Error> {
    let rel = blob_rel(d);
    let mut bytes = Vec::new();
    open_in(root, &rel)?
        .read_to_end(&mut bytes)
        .map_err(io_err(format!("read {rel}")))?;
    Ok(bytes)
}

/// Store the blob `d` from the layout (verified while it is copied).
fn ingest(store: &ImageStore, root: &OwnedFd, d: &Digest) -> Result<(), Error> {
    let file = open_in(root, &blob_rel(d))?;
    store.ingest_blob(d, &mut BufReader::with_capacity(1 << 20, file))?;
    Ok(())
}

pub(super) fn load(
    store: &ImageStore,
    root: &OwnedFd,
    repo_tags: &[(Digest, Vec<String>)],
) -> Result<Vec<String>, Error> {
    let mut bytes = Vec::new();
    open_in(root, "index.json")?
        .read_to_end(&mut bytes)
        .map_err(io_err("read index.json"))?;
    let index: ImageIndex = serde_json::from_slice(&bytes).map_err(json_err("index.json"))?;
    let mut loaded = Vec::new();
    for entry in index.manifests() {
        let target = platform_manifest(root, entry)?;
        let digest = oci_digest(&target)?;
        let manifest: ImageManifest = serde_json::from_slice(&read_blob(root, &digest)?)
            .map_err(json_err(format!("manifest {digest}")))?;
        let config = oci_digest(manifest.config())?;
        let names = names_of(entry, &config, repo_tags)?;
        for layer in manifest.layers() {
            ingest(store, root, &oci_digest(layer)?)?;
        }
        ingest(store, root, &config)?;
        ingest(store, root, &digest)?;
        if names.is_empty() {
            store.register_untagged(target.clone())?;
            let id = config.to_string();
            if !loaded.contains(&id) {
                loaded.push(id);
            }
        }
        for name in names {
            store.register(&name, target.clone())?;
            let short = name.familiar();
            if !loaded.contains(&short) {
                loaded.push(short);
            }
        }
    }
    Ok(loaded)
}

/// The image manifest an index entry stands for: itself, or the host
/// platform's entry of the nested index it points to.
fn platform_manifest(root: &OwnedFd, entry: &Descriptor) -> Result<Descriptor, Error> {
    let mut desc = entry.clone();
    for _ in 0..4 {
        if !is_index(&desc) {
            return Ok(desc);
        }
        let digest = oci_digest(&desc)?;
        let nested: ImageIndex = serde_json::from_slice(&read_blob(root, &digest)?)
            .map_err(json_err(format!("index {digest}")))?;
        desc = crate::platform::select(&nested, &Platform::host())
            .cloned()
            .ok_or(Error::NoPlatform)?;
    }
    Err(Error::NoPlatform)
}

/// The names an index entry gives its image.
fn names_of(
    entry: &Descriptor,
    config: &Digest,
    repo_tags: &[(Digest, Vec<String>)],
) -> Result<Vec<Reference>, Error> {
    let ann = entry.annotations().as_ref();
    let get = |k: &str| ann.and_then(|a| a.get(k)).map(String::as_str);
    if let Some(full) = get(NAME_ANNOTATION) {
        return Ok(vec![Reference::parse(full)?]);
    }
    // A bare tag (`latest`) names no repository; `repo:tag` or `host/repo` does.
    if let Some(r) = get(REF_NAME_ANNOTATION).filter(|r| r.contains(':') || r.contains('/')) {
        return Ok(vec![Reference::parse(r)?]);
    }
    repo_tags
        .iter()
        .filter(|(d, _)| d == config)
        .flat_map(|(_, tags)| tags.iter().map(|t| Reference::parse(t)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::from)
}
