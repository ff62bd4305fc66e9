//! The content-addressed blob store (`<data-root>/content`).
//!
//! ```text
//! content/
//!   blobs/<alg>/<hex>     complete, verified blobs (read-only once renamed here)
//!   ingest/<alg>-<hex>    partial downloads, kept so a re-run resumes with Range
//! ```
//!
//! Every byte that enters is hashed on the way in; a blob only appears under
//! `blobs/` after its size and digest matched, it was fsynced and renamed. A
//! crash leaves at most a partial file under `ingest/`, which the next writer
//! for the same digest re-hashes and continues. Writers for one digest are
//! serialised with `flock` on the ingest file, so two pulls (in one process or
//! two) never interleave bytes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256, Sha512};

use crate::Digest;

/// Errors from the content store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// an I/O operation on the store failed
    #[error("content store: {what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// the bytes received do not hash to the expected digest
    #[error("blob {expected}: content digest mismatch (got {actual})")]
    DigestMismatch { expected: Digest, actual: Digest },
    /// more or fewer bytes than the descriptor said
    #[error("blob {digest}: size mismatch (expected {expected} bytes, got {actual})")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    /// the blob is not in the store
    #[error("blob {0} not found in the content store")]
    NotFound(Digest),
}

type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// The blob store rooted at `<data-root>/content`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

/// What [`ContentStore::writer`] found.
pub enum Ingest {
    /// the blob is already complete in the store
    Exists,
    /// write the (rest of the) blob here
    Writer(Box<Writer>),
}

impl ContentStore {
    /// Open the store under `root`, creating its directories.
    pub fn open(root: &Path) -> Result<Self> {
        for d in ["blobs/sha256", "blobs/sha512", "ingest"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        }
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// Where the blob `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.encoded())
    }

    /// The directory holding complete blobs of `algorithm`.
    pub fn blobs_dir(&self, algorithm: &str) -> PathBuf {
        self.root.join("blobs").join(algorithm)
    }

    fn ingest_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("ingest")
            .join(format!("{}-{}", digest.algorithm(), digest.encoded()))
    }

    /// Whether the blob is complete in the store.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Size of a stored blob.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        match fs::metadata(self.path(digest)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(digest.clone())),
            Err(e) => Err(io_err("stat", &self.path(digest))(e)),
        }
    }

    /// Read a whole blob (manifests, configs: small things).
    pub fn read_to_vec(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.path(digest);
        match fs::read(&path) {
            Ok(v) => Ok(v),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(digest.clone())),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// Remove a blob (and any partial ingest of it). Returns whether it existed.
    pub fn remove(&self, digest: &Digest) -> Result<bool> {
        // A partial ingest usually does not exist; one that stays is resumed
        // or replaced by the next writer.
        let _ = fs::remove_file(self.ingest_path(digest));
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    /// Every complete blob in the store.
    pub fn iter(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in ["sha256", "sha512"] {
            let dir = self.blobs_dir(alg);
            let entries = fs::read_dir(&dir).map_err(io_err("list", &dir))?;
            for entry in entries {
                let entry = entry.map_err(io_err("list", &dir))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if let Ok(d) = format!("{alg}:{name}").parse() {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Remove partial downloads (GC does this when no pull can be running).
    pub fn clear_ingest(&self) -> Result<usize> {
        let dir = self.root.join("ingest");
        let mut n = 0;
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            if fs::remove_file(entry.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Make completed renames durable: fsync the blob directories. Called once
    /// before metadata that points at new blobs is committed.
    pub fn sync(&self) -> Result<()> {
        for alg in ["sha256", "sha512"] {
            let dir = self.blobs_dir(alg);
            let f = File::open(&dir).map_err(io_err("open", &dir))?;
            f.sync_all().map_err(io_err("fsync", &dir))?;
        }
        Ok(())
    }

    /// Start (or resume) writing `expected`. Blocks while another writer holds
    /// the same digest; returns [`Ingest::Exists`] if the blob is (by then)
    /// complete. A resumed writer has re-hashed the partial bytes already on
    /// disk; [`Writer::offset`] says how many.
    pub fn writer(&self, expected: &Digest, size: Option<u64>) -> Result<Ingest> {
        self.open_writer(expected, size, true)
    }

    /// [`ContentStore::writer`]; without `resume`, a partial file left by an
    /// earlier run is emptied rather than re-hashed.
    fn open_writer(&self, expected: &Digest, size: Option<u64>, resume: bool) -> Result<Ingest> {
        if self.contains(expected) {
            return Ok(Ingest::Exists);
        }
        let ingest = self.ingest_path(expected);
        let Some(mut file) = self.lock_ingest(expected, &ingest)? else {
            return Ok(Ingest::Exists);
        };
        let mut hasher = Hasher::new(expected.algorithm());
        let offset = if resume {
            hash_existing(&mut file, &mut hasher, size).map_err(io_err("read", &ingest))?
        } else {
            file.set_len(0).map_err(io_err("truncate", &ingest))?;
            0
        };
        Ok(Ingest::Writer(Box::new(Writer {
            file,
            hasher,
            offset,
            expected: expected.clone(),
            size,
            ingest,
            target: self.path(expected),
        })))
    }

    /// Open and lock the ingest file of `expected`; `None` if, once the lock
    /// is ours, the blob turned out complete. Retries when the file we
    /// locked was renamed or removed by the writer that held it before.
    fn lock_ingest(&self, expected: &Digest, ingest: &Path) -> Result<Option<File>> {
        use std::os::unix::fs::MetadataExt;
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(ingest)
                .map_err(io_err("open", ingest))?;
            rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
                .map_err(|e| io_err("lock", ingest)(e.into()))?;
            if self.contains(expected) {
                // Drop the empty file we may have created after the rename.
                // (Best effort: an empty ingest file is harmless.)
                if file.metadata().is_ok_and(|m| m.len() == 0) {
                    let _ = fs::remove_file(ingest);
                }
                return Ok(None);
            }
            let ours = file.metadata().map_err(io_err("stat", ingest))?;
            match fs::metadata(ingest) {
                Ok(m) if m.dev() == ours.dev() && m.ino() == ours.ino() => return Ok(Some(file)),
                _ => continue, // the path now names another file (or none)
            }
        }
    }

    /// Copy a whole blob from `reader`, verifying it.
    pub fn ingest_reader(
        &self,
        digest: &Digest,
        size: Option<u64>,
        reader: &mut dyn Read,
    ) -> Result<()> {
        let Ingest::Writer(mut w) = self.open_writer(digest, size, false)? else {
            return Ok(());
        };
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err("read source for", &w.ingest)(e)),
            };
            w.write(&buf[..n])?;
        }
        w.commit()
    }

    /// Store `bytes` (already in memory: manifests, configs), verifying them.
    pub fn write_bytes(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        self.ingest_reader(digest, Some(bytes.len() as u64), &mut &bytes[..])
    }
}

/// Hash what a previous run left in the ingest file; drop it if it is
/// already longer than the blob can be.
fn hash_existing(file: &mut File, hasher: &mut Hasher, size: Option<u64>) -> io::Result<u64> {
    let len = file.metadata()?.len();
    if size.is_some_and(|s| len > s) {
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        return Ok(0);
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    file.seek(SeekFrom::Start(0))?;
    while done < len {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    file.seek(SeekFrom::Start(done))?;
    Ok(done)
}

/// Writes one blob into `ingest/`, hashing as it goes; [`Writer::commit`]
/// verifies and moves it into `blobs/`. Dropping without commit keeps the
/// partial file for a later resume.
pub struct Writer {
    file: File,
    hasher: Hasher,
    offset: u64,
    expected: Digest,
    size: Option<u64>,
    ingest: PathBuf,
    target: PathBuf,
}

impl Writer {
    /// Bytes already written (where a resumed download continues).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The partial file (a resumed unpack re-reads its first `offset` bytes).
    pub fn ingest_path(&self) -> &Path {
        &self.ingest
    }

    /// Throw away what was written (the server ignored our Range request).
    pub fn restart(&mut self) -> Result<()> {
        if self.offset == 0 {
            return Ok(());
        }
        self.file
            .set_len(0)
            .map_err(io_err("truncate", &self.ingest))?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(io_err("seek", &self.ingest))?;
        self.hasher = Hasher::new(self.expected.algorithm());
        self.offset = 0;
        Ok(())
    }

    /// Append bytes.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let new_len = self.offset + data.len() as u64;
        if let Some(size) = self.size.filter(|s| new_len > *s) {
            return Err(Error::SizeMismatch {
                digest: self.expected.clone(),
                expected: size,
                actual: new_len,
            });
        }
        self.hasher.update(data);
        self.file
            .write_all(data)
            .map_err(io_err("write", &self.ingest))?;
        self.offset = new_len;
        Ok(())
    }

    /// Verify size and digest, fsync and move into the store. A mismatch
    /// deletes the partial file (it can never become the right blob).
    pub fn commit(self) -> Result<()> {
        if let Some(size) = self.size.filter(|s| *s != self.offset) {
            return Err(Error::SizeMismatch {
                digest: self.expected.clone(),
                expected: size,
                actual: self.offset,
            });
        }
        let actual = self.hasher.finish();
        if actual != self.expected {
            // Never resume from bad bytes; the mismatch is the error to report.
            let _ = fs::remove_file(&self.ingest);
            return Err(Error::DigestMismatch {
                expected: self.expected,
                actual,
            });
        }
        self.file
            .sync_data()
            .map_err(io_err("fsync", &self.ingest))?;
        fs::rename(&self.ingest, &self.target).map_err(io_err("commit", &self.target))?;
        Ok(())
    }
}

/// A running sha256 or sha512.
#[derive(Clone)]
pub(crate) enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    /// A hasher for a digest's algorithm (sha256 unless it says sha512).
    pub(crate) fn new(algorithm: &str) -> Self {
        if algorithm == "sha512" {
            Self::Sha512(Sha512::new())
        } else {
            Self::Sha256(Sha256::new())
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    pub(crate) fn finish(self) -> Digest {
        match self {
            Self::Sha256(h) => Digest::from_sha256_bytes(&h.finalize()),
            Self::Sha512(h) => {
                let text = format!("sha512:{}", hex::encode(h.finalize()));
                // A lowercase-hex string of the right length always parses.
                text.parse().unwrap_or_else(|_| Digest::sha256_of(b""))
            }
        }
    }
}

#[allow(clippy::unwrap_used)]
#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = ContentStore::open(dir.path()).unwrap();
        (dir, s)
    }

    fn writer(s: &ContentStore, d: &Digest, size: u64) -> Writer {
        match s.writer(d, Some(size)).unwrap() {
            Ingest::Writer(w) => *w,
            Ingest::Exists => panic!("unexpected: exists"),
        }
    }

    #[test]
    fn verifies_and_commits() {
        let (_d, s) = store();
        let data = b"hello blob".repeat(1000);
        let d = Digest::sha256_of(&data);
        s.write_bytes(&d, &data).unwrap();
        assert!(s.contains(&d));
        assert_eq!(s.read_to_vec(&d).unwrap(), data);
        assert_eq!(s.iter().unwrap(), vec![d.clone()]);
        assert!(matches!(s.writer(&d, None).unwrap(), Ingest::Exists));
        assert!(s.remove(&d).unwrap());
        assert!(!s.contains(&d));
    }

    #[test]
    fn rejects_corrupt_content() {
        let (_d, s) = store();
        let d = Digest::sha256_of(b"right");
        let err = s.write_bytes(&d, b"wrong").unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(!s.contains(&d));
        assert!(s.iter().unwrap().is_empty());
        // too many bytes is caught before they are written
        let mut w = writer(&s, &d, 5);
        assert!(matches!(
            w.write(b"toolong").unwrap_err(),
            Error::SizeMismatch { .. }
        ));
    }

    #[test]
    fn resumes_partial_ingest() {
        let (_d, s) = store();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let d = Digest::sha256_of(&data);
        let mut w = writer(&s, &d, data.len() as u64);
        w.write(&data[..100_000]).unwrap();
        drop(w); // interrupted
        assert!(!s.contains(&d));
        let mut w = writer(&s, &d, data.len() as u64);
        assert_eq!(w.offset(), 100_000);
        w.write(&data[100_000..]).unwrap();
        w.commit().unwrap();
        assert_eq!(s.read_to_vec(&d).unwrap(), data);
    }

    #[test]
    fn restart_discards_partial() {
        let (_d, s) = store();
        let data = b"0123456789".to_vec();
        let d = Digest::sha256_of(&data);
        let mut w = writer(&s, &d, 10);
        w.write(b"01234").unwrap();
        drop(w);
        let mut w = writer(&s, &d, 10);
        w.restart().unwrap();
        assert_eq!(w.offset(), 0);
        w.write(&data).unwrap();
        w.commit().unwrap();
        assert!(s.contains(&d));
    }
}
