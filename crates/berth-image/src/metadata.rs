//! The image metadata database (`<data-root>/metadata.redb`, redb 2).
//!
//! This comment is the schema: every table, key and value the store persists.
//!
//! | table      | key                          | value                                        |
//! | ---        | ---                          | ---                                          |
//! | `meta`     | `"schema_version"`           | `u64`, currently [`SCHEMA_VERSION`] (= 2)     |
//! | `images`   | full normalized name (`docker.io/library/busybox:latest`, or `repo@sha256:…`) | JSON [`ImageEntry`]: `{"target": <OCI descriptor of the platform manifest>, "config": "sha256:…" (image id), "repo_digest": "sha256:…" \| null, "created": <unix seconds>}` |
//! | `dangling` | image id (`sha256:…`, the config digest) | JSON [`ImageEntry`], same shape: an image that has no name (`<none>:<none>`) |
//!
//! Blobs live in the content store and unpacked layers under `snapshots/`;
//! neither is indexed here: the rows of `images` and `dangling` are the GC
//! root set, and the blobs/snapshots an image needs are derived from its
//! manifest and config.
//!
//! History: version 1 had only `meta` and `images`; version 2 added
//! `dangling` (migration: create the empty table).
//!
//! Rules:
//! * An image id is in `dangling` only while no `images` row has it as
//!   `config`. Writing a name removes its id from `dangling`; moving a name
//!   away from an id that no other name has moves that image into
//!   `dangling` (in the same transaction), as Docker keeps it.
//! * A record is written only after every blob it references is complete
//!   (and the blob directory fsynced) and every layer is unpacked: metadata
//!   last, so a record never points at missing content.
//! * Any change to a table, key or value format bumps [`SCHEMA_VERSION`] and
//!   ships a migration in [`Metadata::migrate`] from every older version; a
//!   database newer than this code is refused rather than misread.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use oci_spec::image::Descriptor;
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::Digest;

/// Version of the schema drawn above.
pub const SCHEMA_VERSION: u64 = 2;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const DANGLING: TableDefinition<&str, &[u8]> = TableDefinition::new("dangling");

/// Errors from the metadata database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// redb failed (open, transaction, table, commit)
    #[error("metadata database {path}: {what}")]
    Db {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// a stored record does not parse
    #[error("metadata database: image record {name:?} is corrupt")]
    Corrupt {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    /// the database was written by a newer berth
    #[error("metadata database {path}: schema version {found} is newer than this berth understands ({SCHEMA_VERSION})")]
    TooNew { path: PathBuf, found: u64 },
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// One row of the `images` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageEntry {
    /// the platform-specific manifest the name points at
    pub target: Descriptor,
    /// the manifest's config digest: the image id
    pub config: Digest,
    /// the digest the name was pulled by (index or manifest), if from a registry
    pub repo_digest: Option<Digest>,
    /// when the record was written (unix seconds)
    pub created: u64,
}

/// The open metadata database.
///
/// The file is opened for each operation and closed after it, so several
/// processes (one `berth` command each, or berthd) can share a data root:
/// redb locks the file while it is open, and an operation that finds it
/// locked by another process waits for it (up to [`LOCK_WAIT`]).
pub struct Metadata {
    path: PathBuf,
    /// serialises this process's operations (redb allows one open per file)
    local: Mutex<()>,
}

/// How long an operation waits for another process to close the database.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// The database, open for one operation.
struct Open<'a> {
    db: Database,
    _local: MutexGuard<'a, ()>,
}

impl std::ops::Deref for Open<'_> {
    type Target = Database;
    fn deref(&self) -> &Database {
        &self.db
    }
}

impl Metadata {
    /// Open (creating and migrating as needed) `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let me = Self {
            path: path.to_owned(),
            local: Mutex::new(()),
        };
        me.migrate()?;
        Ok(me)
    }

    /// Open the file, waiting while another process has it open.
    fn db(&self) -> Result<Open<'_>> {
        let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = Instant::now() + LOCK_WAIT;
        let mut pause = Duration::from_millis(5);
        loop {
            match Database::create(&self.path) {
                Ok(db) => return Ok(Open { db, _local: local }),
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(e) => return Err(db_err("open", &self.path)(e)),
            }
        }
    }

    fn err<'a, E: std::error::Error + Send + Sync + 'static>(
        &'a self,
        what: &'static str,
    ) -> impl FnOnce(E) -> Error + 'a {
        db_err(what, &self.path)
    }

    /// Bring an older database to [`SCHEMA_VERSION`] (version 0 = empty file).
    fn migrate(&self) -> Result<()> {
        let db = self.db()?;
        let tx = db.begin_write().map_err(self.err("begin"))?;
        {
            let mut meta = tx.open_table(META).map_err(self.err("open table meta"))?;
            let found = meta
                .get("schema_version")
                .map_err(self.err("read schema version"))?
                .map(|v| v.value())
                .unwrap_or(0);
            if found > SCHEMA_VERSION {
                return Err(Error::TooNew {
                    path: self.path.clone(),
                    found,
                });
            }
            // Migrations, in order; each brings version n-1 to n.
            if found < 1 {
                tx.open_table(IMAGES)
                    .map_err(self.err("open table images"))?;
            }
            if found < 2 {
                tx.open_table(DANGLING)
                    .map_err(self.err("open table dangling"))?;
            }
            meta.insert("schema_version", SCHEMA_VERSION)
                .map_err(self.err("write schema version"))?;
        }
        tx.commit().map_err(self.err("commit"))?;
        Ok(())
    }

    /// The schema version stored in the file.
    pub fn schema_version(&self) -> Result<u64> {
        let db = self.db()?;
        let tx = db.begin_read().map_err(self.err("begin"))?;
        let meta = tx.open_table(META).map_err(self.err("open table meta"))?;
        let v = meta.get("schema_version").map_err(self.err("read"))?;
        Ok(v.map(|v| v.value()).unwrap_or(0))
    }

    /// One image by full name.
    pub fn get(&self, name: &str) -> Result<Option<ImageEntry>> {
        let db = self.db()?;
        let tx = db.begin_read().map_err(self.err("begin"))?;
        let t = tx
            .open_table(IMAGES)
            .map_err(self.err("open table images"))?;
        let Some(v) = t.get(name).map_err(self.err("read"))? else {
            return Ok(None);
        };
        decode(name, v.value()).map(Some)
    }

    /// Every image, sorted by name.
    pub fn list(&self) -> Result<Vec<(String, ImageEntry)>> {
        let db = self.db()?;
        let tx = db.begin_read().map_err(self.err("begin"))?;
        let t = tx
            .open_table(IMAGES)
            .map_err(self.err("open table images"))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(self.err("iterate"))? {
            let (k, v) = row.map_err(self.err("iterate"))?;
            out.push((k.value().to_owned(), decode(k.value(), v.value())?));
        }
        Ok(out)
    }

    /// Insert or replace an image record. The image leaves `dangling`; the
    /// image the name pointed at before becomes dangling when no other name
    /// has it. Returns that image's id when that happened.
    pub fn put(&self, name: &str, entry: &ImageEntry) -> Result<Option<Digest>> {
        let bytes = encode(name, entry)?;
        let db = self.db()?;
        let tx = db.begin_write().map_err(self.err("begin"))?;
        let orphaned;
        {
            let mut t = tx
                .open_table(IMAGES)
                .map_err(self.err("open table images"))?;
            let old = t
                .insert(name, bytes.as_slice())
                .map_err(self.err("write"))?
                .map(|v| decode(name, v.value()))
                .transpose()?;
            let mut dangling = tx
                .open_table(DANGLING)
                .map_err(self.err("open table dangling"))?;
            dangling
                .remove(entry.config.as_str())
                .map_err(self.err("delete"))?;
            orphaned = match old.filter(|o| o.config != entry.config) {
                Some(old) if !self.has_name(&t, &old.config)? => {
                    let id = old.config.to_string();
                    dangling
                        .insert(id.as_str(), encode(&id, &old)?.as_slice())
                        .map_err(self.err("write"))?;
                    Some(old.config)
                }
                _ => None,
            };
        }
        tx.commit().map_err(self.err("commit"))?;
        Ok(orphaned)
    }

    /// Whether any row of `images` has the image id `id`.
    fn has_name(
        &self,
        t: &impl ReadableTable<&'static str, &'static [u8]>,
        id: &Digest,
    ) -> Result<bool> {
        for row in t.iter().map_err(self.err("iterate"))? {
            let (k, v) = row.map_err(self.err("iterate"))?;
            if decode(k.value(), v.value())?.config == *id {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Record an image without a name (`import` without REF, `load` of an
    /// untagged entry). Does nothing and returns false when a name already
    /// has this image id.
    pub fn put_dangling(&self, entry: &ImageEntry) -> Result<bool> {
        let id = entry.config.to_string();
        let bytes = encode(&id, entry)?;
        let db = self.db()?;
        let tx = db.begin_write().map_err(self.err("begin"))?;
        let added;
        {
            let t = tx
                .open_table(IMAGES)
                .map_err(self.err("open table images"))?;
            added = !self.has_name(&t, &entry.config)?;
            if added {
                let mut dangling = tx
                    .open_table(DANGLING)
                    .map_err(self.err("open table dangling"))?;
                dangling
                    .insert(id.as_str(), bytes.as_slice())
                    .map_err(self.err("write"))?;
            }
        }
        tx.commit().map_err(self.err("commit"))?;
        Ok(added)
    }

    /// Every dangling image, sorted by id.
    pub fn list_dangling(&self) -> Result<Vec<ImageEntry>> {
        let db = self.db()?;
        let tx = db.begin_read().map_err(self.err("begin"))?;
        let t = tx
            .open_table(DANGLING)
            .map_err(self.err("open table dangling"))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(self.err("iterate"))? {
            let (k, v) = row.map_err(self.err("iterate"))?;
            out.push(decode(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Delete dangling images by id; returns those that existed.
    pub fn delete_dangling(&self, ids: &[Digest]) -> Result<Vec<Digest>> {
        self.delete_keys(DANGLING, "open table dangling", ids, Digest::as_str)
    }

    /// Delete names; returns those that existed.
    pub fn delete(&self, names: &[String]) -> Result<Vec<String>> {
        self.delete_keys(IMAGES, "open table images", names, String::as_str)
    }

    /// Remove `keys` from `table` in one write transaction; returns the keys
    /// that were present.
    fn delete_keys<K: Clone>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        open_what: &'static str,
        keys: &[K],
        key_str: fn(&K) -> &str,
    ) -> Result<Vec<K>> {
        let db = self.db()?;
        let tx = db.begin_write().map_err(self.err("begin"))?;
        let mut gone = Vec::new();
        {
            let mut t = tx.open_table(table).map_err(self.err(open_what))?;
            for key in keys {
                if t.remove(key_str(key))
                    .map_err(self.err("delete"))?
                    .is_some()
                {
                    gone.push(key.clone());
                }
            }
        }
        tx.commit().map_err(self.err("commit"))?;
        Ok(gone)
    }
}

fn encode(name: &str, entry: &ImageEntry) -> Result<Vec<u8>> {
    serde_json::to_vec(entry).map_err(|source| Error::Corrupt {
        name: name.to_owned(),
        source,
    })
}

fn decode(name: &str, bytes: &[u8]) -> Result<ImageEntry> {
    serde_json::from_slice(bytes).map_err(|source| Error::Corrupt {
        name: name.to_owned(),
        source,
    })
}

fn db_err<'a, E: std::error::Error + Send + Sync + 'static>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(E) -> Error + 'a {
    move |e| Error::Db {
        what,
        path: path.to_owned(),
        source: Box::new(e),
    }
}

/// Seconds since the epoch (0 if the clock is before it).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[allow(clippy::unwrap_used)]
#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::MediaType;

    fn entry(n: u8) -> ImageEntry {
        let d = Digest::sha256_of(&[n]);
        ImageEntry {
            target: Descriptor::new(
                MediaType::ImageManifest,
                100 + n as u64,
                d.as_str().parse::<oci_spec::image::Digest>().unwrap(),
            ),
            config: d.clone(),
            repo_digest: Some(d),
            created: 1,
        }
    }

    #[test]
    fn records_round_trip_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.redb");
        {
            let m = Metadata::open(&path).unwrap();
            assert_eq!(m.schema_version().unwrap(), SCHEMA_VERSION);
            m.put("docker.io/library/a:latest", &entry(1)).unwrap();
            m.put("docker.io/library/b:latest", &entry(2)).unwrap();
            assert_eq!(
                m.delete(&["docker.io/library/b:latest".into(), "x".into()])
                    .unwrap()
                    .len(),
                1
            );
        }
        let m = Metadata::open(&path).unwrap();
        let all = m.list().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, "docker.io/library/a:latest");
        assert_eq!(all[0].1.target.size(), 101);
        assert!(m.get("docker.io/library/b:latest").unwrap().is_none());
    }

    #[test]
    fn two_handles_share_one_file() {
        // as two berth processes on one data root would
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.redb");
        let a = std::sync::Arc::new(Metadata::open(&path).unwrap());
        let b = Metadata::open(&path).unwrap();
        let writer = {
            let a = a.clone();
            std::thread::spawn(move || {
                for i in 0..20u8 {
                    a.put(&format!("a{i}"), &entry(i)).unwrap();
                }
            })
        };
        for i in 0..20u8 {
            b.put(&format!("b{i}"), &entry(i)).unwrap();
        }
        writer.join().unwrap();
        assert_eq!(a.list().unwrap().len(), 40);
    }

    /// A database at `path` whose meta table says `version`, as another
    /// berth release left it.
    fn database_of_schema(path: &Path, version: u64) -> Database {
        let db = Database::create(path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", version)
            .unwrap();
        tx.commit().unwrap();
        db
    }

    #[test]
    fn migrates_a_version_1_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.redb");
        {
            // what berth with schema 1 wrote: meta + images, no dangling
            let db = database_of_schema(&path, 1);
            let tx = db.begin_write().unwrap();
            let bytes = serde_json::to_vec(&entry(1)).unwrap();
            tx.open_table(IMAGES)
                .unwrap()
                .insert("docker.io/library/a:latest", bytes.as_slice())
                .unwrap();
            tx.commit().unwrap();
        }
        let m = Metadata::open(&path).unwrap();
        assert_eq!(m.schema_version().unwrap(), 2);
        assert_eq!(m.list().unwrap().len(), 1);
        assert!(m.list_dangling().unwrap().is_empty());
        // the new table works: moving the name leaves the old image dangling
        assert_eq!(
            m.put("docker.io/library/a:latest", &entry(2)).unwrap(),
            Some(entry(1).config)
        );
        assert_eq!(m.list_dangling().unwrap()[0].config, entry(1).config);
    }

    #[test]
    fn moving_the_last_name_leaves_the_image_dangling() {
        let dir = tempfile::tempdir().unwrap();
        let m = Metadata::open(&dir.path().join("metadata.redb")).unwrap();
        let (one, two) = (entry(1), entry(2));
        m.put("a", &one).unwrap();
        m.put("b", &one).unwrap();
        // `a` moves to image 2, but `b` still names image 1
        assert_eq!(m.put("a", &two).unwrap(), None);
        assert!(m.list_dangling().unwrap().is_empty());
        // the last name moves: image 1 is dangling
        assert_eq!(m.put("b", &two).unwrap(), Some(one.config.clone()));
        let dangling = m.list_dangling().unwrap();
        assert_eq!(dangling.len(), 1);
        assert_eq!(dangling[0].config, one.config);
        // re-writing the same image under its name changes nothing
        assert_eq!(m.put("b", &two).unwrap(), None);
        // naming it again takes it out of dangling
        m.put("c", &one).unwrap();
        assert!(m.list_dangling().unwrap().is_empty());
        // an untagged record of a named image is not kept
        assert!(!m.put_dangling(&one).unwrap());
        m.delete(&["c".into()]).unwrap();
        assert!(m.put_dangling(&one).unwrap());
        assert_eq!(
            m.delete_dangling(&[one.config.clone(), two.config.clone()])
                .unwrap(),
            vec![one.config]
        );
        assert!(m.list_dangling().unwrap().is_empty());
    }

    #[test]
    fn refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.redb");
        database_of_schema(&path, 99);
        assert!(matches!(
            Metadata::open(&path),
            Err(Error::TooNew { found: 99, .. })
        ));
    }
}
