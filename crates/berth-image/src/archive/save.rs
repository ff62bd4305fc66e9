//! Writing images out: one tar that is both a docker-archive and an OCI
//! image layout (Docker 25+'s shape), or an OCI layout directory.
//!
//! ```text
//! blobs/sha256/<layer>…  <config>  <manifest>   stored blobs, byte for byte
//! index.json      one entry per name (io.containerd.image.name, ref.name)
//! manifest.json   [{Config, RepoTags, Layers}] pointing into blobs/
//! oci-layout      {"imageLayoutVersion":"1.0.0"}
//! repositories    {"busybox":{"latest":"<top layer hex>"}} (legacy)
//! ```
//! Headers are deterministic (mtime 0, root, 0644), so saving the same
//! images twice gives the same bytes.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use oci_spec::image::Descriptor;
use serde_json::{json, Value};

use super::{descriptor, io_err, Error, NAME_ANNOTATION, OCI_INDEX, REF_NAME_ANNOTATION};
use crate::pull::{oci_digest, record_name};
use crate::store::ImageStore;
use crate::{Digest, Reference};

/// One image to write, with the names it is saved under.
struct Image {
    names: Vec<Reference>,
    target: Descriptor,
    config: Digest,
    layers: Vec<Digest>,
}

pub(super) fn save(store: &ImageStore, refs: &[&str], out: &mut dyn Write) -> Result<(), Error> {
    let images = collect(store, refs)?;
    let mut sink = TarSink(tar::Builder::new(out));
    write_layout(store, &images, &mut sink)?;
    sink.0
        .into_inner()
        .map_err(io_err("finish the archive"))?
        .flush()
        .map_err(io_err("write the archive"))
}

/// Write the images as an OCI image layout directory `dir` (created if
/// needed), with the docker-archive files beside it as in [`super::save`].
pub fn save_oci_dir(store: &ImageStore, refs: &[&str], dir: &Path) -> Result<(), Error> {
    let images = collect(store, refs)?;
    let mut sink = DirSink(dir);
    write_layout(store, &images, &mut sink)
}

/// Resolve every ref; refs naming the same manifest become one image.
fn collect(store: &ImageStore, refs: &[&str]) -> Result<Vec<Image>, Error> {
    let mut images: Vec<Image> = Vec::new();
    for r in refs {
        let rec = store.resolve(r)?;
        // Saved by name: keep the name; saved by id: no name, as Docker does.
        let name = Reference::parse(r)
            .ok()
            .filter(|p| record_name(p) == rec.name);
        if let Some(img) = images
            .iter_mut()
            .find(|i| i.target.digest() == rec.target.digest())
        {
            img.names.extend(name.filter(|n| !img.names.contains(n)));
            continue;
        }
        let manifest = store.manifest(&rec)?;
        let layers = manifest
            .layers()
            .iter()
            .map(oci_digest)
            .collect::<Result<Vec<_>, _>>()?;
        images.push(Image {
            names: name.into_iter().collect(),
            target: rec.target.clone(),
            config: oci_digest(manifest.config())?,
            layers,
        });
    }
    Ok(images)
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.encoded())
}

fn write_layout(store: &ImageStore, images: &[Image], sink: &mut dyn Sink) -> Result<(), Error> {
    sink.dir("blobs")?;
    let mut written = HashSet::new();
    let mut algorithms = HashSet::new();
    for img in images {
        let manifest = oci_digest(&img.target)?;
        for d in img.layers.iter().chain([&img.config, &manifest]) {
            if !written.insert(d.clone()) {
                continue;
            }
            if algorithms.insert(d.algorithm().to_owned()) {
                sink.dir(&format!("blobs/{}", d.algorithm()))?;
            }
            let path = store.blob_path(d);
            let file = File::open(&path).map_err(io_err(format!("open blob {d}")))?;
            let size = file
                .metadata()
                .map_err(io_err(format!("stat blob {d}")))?
                .len();
            sink.file(
                &blob_name(d),
                size,
                &mut io::BufReader::with_capacity(1 << 20, file),
            )?;
        }
    }
    let docs = [
        ("index.json", index_json(images)?),
        ("manifest.json", manifest_json(images)),
        ("oci-layout", json!({ "imageLayoutVersion": "1.0.0" })),
        ("repositories", repositories(images)),
    ];
    for (name, doc) in docs {
        let bytes = serde_json::to_vec(&doc).map_err(super::json_err(name))?;
        sink.file(name, bytes.len() as u64, &mut &bytes[..])?;
    }
    Ok(())
}

fn index_json(images: &[Image]) -> Result<Value, Error> {
    let mut manifests = Vec::new();
    for img in images {
        let digest = oci_digest(&img.target)?;
        let base = descriptor(img.target.media_type().as_ref(), &digest, img.target.size());
        if img.names.is_empty() {
            manifests.push(base.clone());
        }
        for n in &img.names {
            let mut d = base.clone();
            let mut ann = serde_json::Map::new();
            ann.insert(NAME_ANNOTATION.into(), n.to_string().into());
            if let Some(tag) = &n.tag {
                ann.insert(REF_NAME_ANNOTATION.into(), tag.clone().into());
            }
            d["annotations"] = Value::Object(ann);
            manifests.push(d);
        }
    }
    Ok(json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests }))
}

fn tags(img: &Image) -> Vec<String> {
    img.names
        .iter()
        .filter(|n| n.tag.is_some() && n.digest.is_none())
        .map(Reference::familiar)
        .collect()
}

fn manifest_json(images: &[Image]) -> Value {
    let entries: Vec<Value> = images
        .iter()
        .map(|img| {
            json!({
                "Config": blob_name(&img.config),
                "RepoTags": tags(img),
                "Layers": img.layers.iter().map(blob_name).collect::<Vec<_>>(),
            })
        })
        .collect();
    Value::Array(entries)
}

fn repositories(images: &[Image]) -> Value {
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for img in images {
        let Some(top) = img.layers.last() else {
            continue;
        };
        for n in img.names.iter().filter(|n| n.digest.is_none()) {
            if let Some(tag) = &n.tag {
                repos
                    .entry(n.familiar_name())
                    .or_default()
                    .insert(tag.clone(), top.encoded().to_owned());
            }
        }
    }
    json!(repos)
}

/// Where the layout goes.
trait Sink {
    fn dir(&mut self, path: &str) -> Result<(), Error>;
    fn file(&mut self, path: &str, size: u64, data: &mut dyn Read) -> Result<(), Error>;
}

struct TarSink<'a>(tar::Builder<&'a mut dyn Write>);

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

impl Sink for TarSink<'_> {
    fn dir(&mut self, path: &str) -> Result<(), Error> {
        let mut h = header(tar::EntryType::Directory, 0, 0o755);
        self.0
            .append_data(&mut h, format!("{path}/"), io::empty())
            .map_err(io_err(format!("write {path}/")))
    }

    fn file(&mut self, path: &str, size: u64, data: &mut dyn Read) -> Result<(), Error> {
        let mut h = header(tar::EntryType::Regular, size, 0o644);
        self.0
            .append_data(&mut h, path, data)
            .map_err(io_err(format!("write {path}")))
    }
}

struct DirSink<'a>(&'a Path);

impl Sink for DirSink<'_> {
    fn dir(&mut self, path: &str) -> Result<(), Error> {
        let p = self.0.join(path);
        std::fs::create_dir_all(&p).map_err(io_err(format!("create {}", p.display())))
    }

    fn file(&mut self, path: &str, _size: u64, data: &mut dyn Read) -> Result<(), Error> {
        let p = self.0.join(path);
        let mut f = File::create(&p).map_err(io_err(format!("create {}", p.display())))?;
        io::copy(data, &mut f).map_err(io_err(format!("write {}", p.display())))?;
        Ok(())
    }
}
