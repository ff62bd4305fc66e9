//! Image archives: `save` (docker-archive with the OCI layout inside, as
//! Docker 25+ writes it), `load` (docker-archive, old `<id>/layer.tar`
//! archives, OCI layout archives) and `import` (a rootfs tarball as a
//! one-layer image).
//! OWNER: unpack work. `docs/layers.md` lists the formats.

mod docker_archive;
mod import;
mod load;
mod oci_layout;
mod save;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::openat2::openat2;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde_json::{json, Value};

use crate::store::{ImageRecord, ImageStore};
use crate::{Digest, Reference};

pub use import::apply_change;
pub use save::save_oci_dir;

/// OCI media types this module writes.
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Annotation containerd and Docker 25+ put the full image name in.
pub(crate) const NAME_ANNOTATION: &str = "io.containerd.image.name";
/// The OCI annotation for a reference name (often just the tag).
pub(crate) const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Errors from save, load and import.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// the image store refused an operation
    #[error("image store")]
    Store(#[from] crate::store::Error),
    /// a name in the archive (or on the command line) is not a reference
    #[error(transparent)]
    Reference(#[from] crate::reference::Error),
    /// reading or writing a file failed
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// a JSON document of the archive does not parse
    #[error("invalid {what} in the archive")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// the archive tar itself is broken or hostile
    #[error("reading the archive")]
    Archive(#[from] crate::unpack::Error),
    /// neither layout's index file is present
    #[error("the archive has neither manifest.json nor index.json: it is not a docker-archive or an OCI layout")]
    NotAnArchive,
    /// a file the archive's manifest names is not in the archive
    #[error("the archive lacks {0}, which its manifest names")]
    Missing(String),
    /// a multi-platform index without the host's platform
    #[error("the archive's index has no manifest for this platform")]
    NoPlatform,
    /// an `import --change` that is not a supported Dockerfile instruction
    #[error("invalid change {0:?}: expected CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR or STOPSIGNAL")]
    Change(String),
    /// a digest in the archive does not parse
    #[error("invalid digest in the archive")]
    Digest(#[source] crate::digest::Error),
}

/// `berth save`: write the images named by `refs` (names or ids) to `out` as
/// one tar that is both a docker-archive (`manifest.json`, `repositories`)
/// and an OCI image layout (`oci-layout`, `index.json`, `blobs/`), with the
/// stored blobs copied byte for byte.
pub fn save(store: &ImageStore, refs: &[&str], out: &mut dyn Write) -> Result<(), Error> {
    save::save(store, refs, out)
}

/// `berth load`: read a docker-archive or OCI layout archive (plain, gzip or
/// zstd) from `input`, store its blobs and register every image: under
/// its names, or as a dangling image when it has none. Returns the names
/// loaded in Docker's short form, and the ids (`sha256:…`) of the images
/// loaded without a name (`Loaded image ID:`).
pub fn load(store: &ImageStore, input: &mut dyn Read) -> Result<Vec<String>, Error> {
    load::load(store, input)
}

/// Load the images of an OCI image layout directory (or an extracted
/// docker-archive) `dir`, as [`load`] does for an archive.
pub fn load_dir(store: &ImageStore, dir: &Path) -> Result<Vec<String>, Error> {
    load::read_layout(store, dir)
}

/// `berth import`: turn a rootfs tarball (plain, gzip or zstd) into a
/// one-layer image named `name` (a dangling image, whose record has an
/// empty name, when `None`), with `changes` (Dockerfile instructions)
/// applied to its config.
pub fn import(
    store: &ImageStore,
    input: &mut dyn Read,
    name: Option<&Reference>,
    changes: &[String],
) -> Result<ImageRecord, Error> {
    import::import(store, input, name, changes)
}

/// `Error::Io` with a message naming what failed.
pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

pub(crate) fn json_err(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Error {
    let what = what.into();
    move |source| Error::Json { what, source }
}

/// Open `rel` inside the directory `root` with every symlink resolved inside
/// it, so a hostile archive cannot make us read host files.
pub(crate) fn open_in(root: &OwnedFd, rel: &str) -> Result<File, Error> {
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let flags = OFlags::RDONLY | OFlags::CLOEXEC;
    match openat2(root, rel, flags, Mode::empty(), resolve) {
        Ok(fd) => Ok(File::from(fd)),
        Err(rustix::io::Errno::NOENT) => Err(Error::Missing(rel.to_owned())),
        Err(e) => Err(Error::Io {
            what: format!("open {rel} in the archive"),
            source: e.into(),
        }),
    }
}

/// Read a (small) JSON file of the archive.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    root: &OwnedFd,
    rel: &str,
) -> Result<T, Error> {
    let mut bytes = Vec::new();
    open_in(root, rel)?
        .read_to_end(&mut bytes)
        .map_err(io_err(format!("read {rel} in the archive")))?;
    serde_json::from_slice(&bytes).map_err(json_err(rel))
}

/// A descriptor as JSON (`mediaType`, `digest`, `size`).
pub(crate) fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Value {
    json!({ "mediaType": media_type, "digest": digest.as_str(), "size": size })
}

/// A scratch directory under the data root, removed on drop.
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    pub(crate) fn new(store: &ImageStore, prefix: &str) -> Result<Self, Error> {
        let parent = store.data_root().join("tmp");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = parent.join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io_err(format!("create {}", dir.display())))?;
        Ok(Self(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
