//! Loading an archive: extract it (with the layer unpacker, so a hostile
//! archive cannot write outside a scratch dir), then read it as an OCI
//! layout when it has `index.json`, else as a docker-archive.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{openat, Mode, OFlags, CWD};

use super::{docker_archive, io_err, oci_layout, Error, ScratchDir};
use crate::store::ImageStore;
use crate::unpack::{self, Compression};

pub(super) fn load(store: &ImageStore, input: &mut dyn Read) -> Result<Vec<String>, Error> {
    let scratch = ScratchDir::new(store, "load")?;
    let mut input = BufReader::with_capacity(1 << 20, input);
    let head = input.fill_buf().map_err(io_err("read the archive"))?;
    let compression = Compression::detect(head);
    let opts = unpack::Options {
        root: false,
        ..unpack::Options::default()
    };
    unpack::unpack_layer(input, compression, scratch.path(), &opts)?;
    read_layout(store, scratch.path())
}

/// Load the images of an unpacked layout directory: an OCI layout when it
/// has `index.json`, else a docker-archive tree.
pub(super) fn read_layout(store: &ImageStore, dir: &Path) -> Result<Vec<String>, Error> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let root: OwnedFd = openat(CWD, dir, flags, Mode::empty()).map_err(|e| Error::Io {
        what: format!("open {}", dir.display()),
        source: e.into(),
    })?;
    let has = |name: &str| dir.join(name).symlink_metadata().is_ok();
    if has("index.json") {
        let tags = if has("manifest.json") {
            docker_archive::repo_tags(&root)?
        } else {
            Vec::new()
        };
        oci_layout::load(store, &root, &tags)
    } else if has("manifest.json") {
        docker_archive::load(store, &root)
    } else {
        Err(Error::NotAnArchive)
    }
}
