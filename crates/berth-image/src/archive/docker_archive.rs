//! Reading a docker-archive: `manifest.json` lists, per image, its config
//! file, its RepoTags and its layer tars (`<id>/layer.tar` in old archives,
//! `blobs/sha256/<hex>` since Docker 25). Layers may be plain or compressed;
//! an OCI manifest is built for them with their digests.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;

use oci_spec::image::Descriptor;
use serde::Deserialize;
use serde_json::json;

use super::{descriptor, io_err, json_err, open_in, read_json, Error, OCI_CONFIG, OCI_MANIFEST};
use crate::store::ImageStore;
use crate::unpack::{Compression, HashingReader};
use crate::{Digest, Reference};

/// One image of `manifest.json`.
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// The RepoTags of each image of `manifest.json`, by config digest (used to
/// name OCI index entries that carry no full name).
pub(super) fn repo_tags(root: &OwnedFd) -> Result<Vec<(Digest, Vec<String>)>, Error> {
    let entries: Vec<Entry> = read_json(root, "manifest.json")?;
    let mut out = Vec::new();
    for e in entries {
        let (digest, _) = read_config(root, &e.config)?;
        out.push((digest, e.repo_tags.unwrap_or_default()));
    }
    Ok(out)
}

pub(super) fn load(store: &ImageStore, root: &OwnedFd) -> Result<Vec<String>, Error> {
    let entries: Vec<Entry> = read_json(root, "manifest.json")?;
    let mut loaded = Vec::new();
    for e in entries {
        let (config_digest, config) = read_config(root, &e.config)?;
        let tags = e.repo_tags.unwrap_or_default();
        let names = tags
            .iter()
            .map(|t| Reference::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        store.ingest_blob(&config_digest, &mut &config[..])?;
        let layers = e
            .layers
            .iter()
            .map(|l| ingest_layer(store, root, l))
            .collect::<Result<Vec<_>, _>>()?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, &config_digest, config.len() as u64),
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest).map_err(json_err("manifest"))?;
        let digest = Digest::sha256_of(&bytes);
        store.ingest_blob(&digest, &mut &bytes[..])?;
        let desc: Descriptor =
            serde_json::from_value(descriptor(OCI_MANIFEST, &digest, bytes.len() as u64))
                .map_err(json_err("manifest descriptor"))?;
        if names.is_empty() {
            store.register_untagged(desc.clone())?;
            loaded.push(config_digest.to_string());
        }
        for name in names {
            store.register(&name, desc.clone())?;
            loaded.push(name.familiar());
        }
    }
    Ok(loaded)
}

/// The config's digest and bytes.
fn read_config(root: &OwnedFd, rel: &str) -> Result<(Digest, Vec<u8>), Error> {
    let mut bytes = Vec::new();
    open_in(root, rel)?
        .read_to_end(&mut bytes)
        .map_err(io_err(format!("read {rel}")))?;
    Ok((Digest::sha256_of(&bytes), bytes))
}

/// `blobs/<alg>/<hex>` names its digest; other names are hashed.
fn known_digest(rel: &str) -> Option<Digest> {
    let rest = rel.trim_start_matches("./").strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    format!("{alg}:{hex}").parse().ok()
}

/// Store one layer file; returns its descriptor (media type from its
/// compression, digest, size).
fn ingest_layer(store: &ImageStore, root: &OwnedFd, rel: &str) -> Result<serde_json::Value, Error> {
    let mut file = open_in(root, rel)?;
    let size = file
        .metadata()
        .map_err(io_err(format!("stat {rel}")))?
        .len();
    let mut head = [0u8; 4];
    let n = read_up_to(&mut file, &mut head).map_err(io_err(format!("read {rel}")))?;
    let compression = Compression::detect(&head[..n]);
    let digest = match known_digest(rel) {
        Some(d) => d,
        None => hash_file(&mut file).map_err(io_err(format!("read {rel}")))?,
    };
    file.seek(SeekFrom::Start(0))
        .map_err(io_err(format!("read {rel}")))?;
    store.ingest_blob(&digest, &mut BufReader::with_capacity(1 << 20, file))?;
    Ok(descriptor(compression.oci_media_type(), &digest, size))
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn hash_file(file: &mut File) -> std::io::Result<Digest> {
    file.seek(SeekFrom::Start(0))?;
    let mut h = HashingReader::new(BufReader::with_capacity(1 << 20, &mut *file));
    std::io::copy(&mut h, &mut std::io::sink())?;
    Ok(h.finish().0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_paths_name_their_digest() {
        let d = Digest::sha256_of(b"x");
        let path = format!("blobs/sha256/{}", d.encoded());
        assert_eq!(known_digest(&path), Some(d));
        assert_eq!(known_digest("abc/layer.tar"), None);
        assert_eq!(known_digest("blobs/sha256/zz"), None);
    }
}
