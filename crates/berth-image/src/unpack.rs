//! Safe layer unpacking: one layer tar (plain, gzip or zstd) into an empty
//! directory that becomes an overlayfs lower dir, with OCI whiteouts turned
//! into overlay whiteouts and nothing ever written outside that directory.
//! OWNER: unpack work. `docs/layers.md` describes the policy entry by entry.

mod entry;
mod fsops;
mod guard;
mod meta;
mod path;

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::Digest;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// a plain tar
    None,
    /// gzip (possibly several members)
    Gzip,
    /// zstd (possibly several frames)
    Zstd,
}

impl Compression {
    /// The compression a layer media type declares (OCI and Docker layer
    /// types, distributable or not).
    pub fn from_media_type(media_type: &str) -> Result<Self, Error> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Ok(Self::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Ok(Self::Gzip),
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Ok(Self::Zstd),
            other => Err(Error::MediaType(other.to_owned())),
        }
    }

    /// Guess the compression from the first bytes of a blob (gzip and zstd
    /// magic numbers; anything else is taken as a plain tar).
    pub fn detect(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Self::Zstd
        } else {
            Self::None
        }
    }

    /// The OCI layer media type for this compression.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Self::None => "application/vnd.oci.image.layer.v1.tar",
            Self::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Self::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// How to unpack.
#[derive(Debug, Clone)]
pub struct Options {
    /// We are (real) root: chown entries, create device nodes, write
    /// `trusted.*` overlay xattrs. Otherwise ownership is left to the
    /// current user, device nodes are skipped and whiteouts/opaque markers
    /// fall back to the `user.overlay.*` xattr forms when mknod is refused.
    pub root: bool,
    /// Largest apparent size accepted for a GNU sparse file (holes are
    /// recreated as holes, but the reader still walks them).
    pub max_sparse_size: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            root: rustix::process::geteuid().is_root(),
            max_sparse_size: 16 << 30,
        }
    }
}

/// What an unpack did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// sha256 of the uncompressed tar stream (the layer's DiffID)
    pub diff_id: Digest,
    /// tar entries processed (including whiteouts)
    pub entries: u64,
    /// length of the uncompressed tar stream
    pub bytes: u64,
    /// entries or attributes skipped because we lack the privilege (device
    /// nodes, ownership, `trusted.*`/`security.*` xattrs when not root)
    pub skipped: u64,
}

/// Errors from unpacking a layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// the media type is not a layer type we can unpack
    #[error("unsupported layer media type {0:?}")]
    MediaType(String),
    /// the destination directory cannot be opened
    #[error("cannot open layer directory {path}")]
    Dest {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// the compressed stream or the tar framing is broken
    #[error("reading layer tar")]
    Read(#[source] io::Error),
    /// an entry name climbs out of the layer
    #[error("layer entry {entry:?}: path escapes the layer directory")]
    PathEscape { entry: String },
    /// a hard link or symlink target climbs out of the layer
    #[error("layer entry {entry:?}: link target {target:?} points outside the layer directory")]
    LinkEscape { entry: String, target: String },
    /// a whiteout names nothing deletable (`.wh.`, `.wh..`, `.wh...`)
    #[error("layer entry {entry:?}: invalid whiteout")]
    Whiteout { entry: String },
    /// an entry kind or encoding we refuse
    #[error("layer entry {entry:?}: {what} is not supported")]
    Unsupported { entry: String, what: &'static str },
    /// a filesystem operation for an entry failed
    #[error("layer entry {entry:?}: {op} failed")]
    Io {
        entry: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Unpack one layer into the empty directory `dest`, streaming: the blob is
/// decompressed, hashed and written in one pass. Returns the DiffID (sha256
/// of the whole uncompressed tar, trailing padding included).
pub fn unpack_layer(
    reader: impl Read,
    compression: Compression,
    dest: &Path,
    opts: &Options,
) -> Result<Stats, Error> {
    let tree = fsops::Tree::open(dest).map_err(|source| Error::Dest {
        path: dest.to_owned(),
        source,
    })?;
    let input = BufReader::with_capacity(1 << 20, reader);
    let decoded = decompress(input, compression).map_err(Error::Read)?;
    let hashing = HashingReader::new(decoded);
    let guarded = guard::FramingGuard::new(hashing);
    let mut archive = tar::Archive::new(BufReader::with_capacity(256 << 10, guarded));
    let mut unpacker = entry::Unpacker::new(tree, opts);
    for item in archive.entries().map_err(Error::Read)? {
        unpacker.entry(item.map_err(Error::Read)?)?;
    }
    unpacker.finish()?;
    let skipped = unpacker.skipped();
    let entries = unpacker.entries();
    // Hash (and so verify) everything after the end-of-archive marker too.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(Error::Read)?;
    let (diff_id, bytes) = rest.into_inner().into_inner().finish();
    Ok(Stats {
        diff_id,
        entries,
        bytes,
        skipped,
    })
}

/// A reader of the decompressed stream.
pub fn decompress<'a, R: BufRead + 'a>(
    input: R,
    compression: Compression,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
    })
}

/// A reader that hashes (sha256) and counts what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R> HashingReader<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The digest and length of everything read so far.
    pub fn finish(self) -> (Digest, u64) {
        (
            Digest::from_sha256_bytes(&self.hasher.finalize()),
            self.bytes,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        use Compression as C;
        let oci = "application/vnd.oci.image.layer.v1.tar";
        assert_eq!(C::from_media_type(oci).unwrap(), C::None);
        assert_eq!(C::from_media_type(&format!("{oci}+gzip")).unwrap(), C::Gzip);
        assert_eq!(C::from_media_type(&format!("{oci}+zstd")).unwrap(), C::Zstd);
        let docker = "application/vnd.docker.image.rootfs.diff.tar.gzip";
        assert_eq!(C::from_media_type(docker).unwrap(), C::Gzip);
        let nd = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
        assert_eq!(C::from_media_type(nd).unwrap(), C::Gzip);
        let err = C::from_media_type("application/json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported layer media type \"application/json\""
        );
        assert_eq!(C::detect(&[0x1f, 0x8b, 8]), C::Gzip);
        assert_eq!(C::detect(&[0x28, 0xb5, 0x2f, 0xfd]), C::Zstd);
        assert_eq!(C::detect(b"etc/\0\0\0"), C::None);
    }
}
