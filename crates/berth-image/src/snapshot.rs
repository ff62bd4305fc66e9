//! Overlay snapshots (`<data-root>/snapshots`): one unpacked directory per
//! layer, keyed by the layer's chain ID, so a base shared by many images is
//! stored once.
//!
//! ```text
//! snapshots/<chainid-hex>/     a complete layer (overlay lower dir; whiteouts
//!                              already converted to overlay's form)
//! snapshots/.tmp-<hex>-<pid>-<n>/   an unpack in progress, renamed when done
//! ```
//!
//! Like containerd's snapshotters this module returns mounts as data
//! ([`Mount`]); [`mount`] is a separate helper that performs them.

use std::ffi::CString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use crate::Digest;

/// Errors from the snapshot directory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// a filesystem operation failed
    #[error("snapshots: {what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// mount(2) failed
    #[error("mount {kind} on {target}")]
    Mount {
        kind: String,
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    /// a single layer path is so long that even relative lowerdirs overflow a page
    #[error("overlay options for {target} are {len} bytes, over the kernel's limit of {limit} even with relative paths")]
    OptionsTooLong {
        target: PathBuf,
        len: usize,
        limit: usize,
    },
}

type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// Chain IDs of a layer stack (OCI image spec): `chain[0] = diff[0]`,
/// `chain[n] = sha256(chain[n-1] + " " + diff[n])`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => {
                let mut h = Sha256::new();
                h.update(parent.as_str().as_bytes());
                h.update(b" ");
                h.update(d.as_str().as_bytes());
                Digest::from_sha256_bytes(&h.finalize())
            }
        };
        out.push(next);
    }
    out
}

/// A mount as data: what `mount -t <kind> -o <options> <source> <target>` does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    /// filesystem type (`overlay`, `bind`)
    #[serde(rename = "type")]
    pub kind: String,
    /// source (`overlay`, or the directory for a bind mount)
    pub source: String,
    /// mount options (`lowerdir=…`, `upperdir=…`, `workdir=…`, `ro`, `rbind`)
    pub options: Vec<String>,
}

/// The snapshot directory.
#[derive(Debug, Clone)]
pub struct Snapshots {
    root: PathBuf,
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl Snapshots {
    /// Open `root`, creating it.
    pub fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root).map_err(io_err("create", root))?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// The directory of the layer with chain ID `chain`.
    pub fn path(&self, chain: &Digest) -> PathBuf {
        self.root.join(chain.encoded())
    }

    /// Whether the layer is unpacked (only complete layers have their final name).
    pub fn exists(&self, chain: &Digest) -> bool {
        self.path(chain).is_dir()
    }

    /// A fresh, empty temporary directory to unpack `chain` into.
    pub fn temp_dir(&self, chain: &Digest) -> Result<TempSnapshot> {
        let n = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let path = self.root.join(format!(
            ".tmp-{}-{}-{n}",
            &chain.encoded()[..12],
            std::process::id()
        ));
        fs::create_dir(&path).map_err(io_err("create", &path))?;
        Ok(TempSnapshot {
            path: Some(path),
            target: self.path(chain),
        })
    }

    /// Chain IDs (hex) of every complete snapshot, and the paths of leftover
    /// temporary directories.
    pub fn list(&self) -> Result<(Vec<String>, Vec<PathBuf>)> {
        let mut done = Vec::new();
        let mut temps = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io_err("list", &self.root))? {
            let entry = entry.map_err(io_err("list", &self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                temps.push(entry.path());
            } else if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                done.push(name);
            }
        }
        Ok((done, temps))
    }

    /// Delete a snapshot (or temp dir) tree.
    pub fn remove_dir(&self, path: &Path) -> Result<()> {
        remove_tree(path).map_err(io_err("remove", path))
    }

    /// Delete the snapshot `hex` (a chain ID's hex part).
    pub fn remove(&self, hex: &str) -> Result<()> {
        self.remove_dir(&self.root.join(hex))
    }
}

/// Remove a tree, also when the layer left directories without write
/// permission (a layer may contain `dr-xr-xr-x` dirs; root ignores modes).
fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// An unpack in progress; removed on drop unless committed.
pub struct TempSnapshot {
    path: Option<PathBuf>,
    target: PathBuf,
}

impl TempSnapshot {
    /// Where to unpack.
    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(&self.target)
    }

    /// Rename into place. If another pull committed the same chain ID first,
    /// ours is discarded (the content is identical by construction).
    pub fn commit(mut self) -> Result<()> {
        let Some(path) = self.path.take() else {
            return Ok(());
        };
        match fs::rename(&path, &self.target) {
            Ok(()) => Ok(()),
            Err(e) if self.target.is_dir() => {
                tracing::debug!(error = %e, "snapshot committed concurrently");
                remove_tree(&path).map_err(io_err("remove", &path))
            }
            Err(e) => {
                // The rename error is the one to report; temp dirs left
                // behind are listed by `list` and removed by gc.
                let _ = remove_tree(&path);
                Err(io_err("commit", &self.target)(e))
            }
        }
    }
}

impl Drop for TempSnapshot {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            // Drop cannot report; leftovers are listed by `list` for gc.
            let _ = remove_tree(&p);
        }
    }
}

/// The mounts for a container root: an overlay of `lowers` (bottom layer
/// first, as [`crate::ImageStore::layer_dirs`] returns them) with a
/// writable `upper`/`work`. An image with a single layer still uses overlay
/// (a bind mount would let the container write into the shared layer).
/// With no layers at all (`FROM scratch`, nothing added) the upper dir is
/// bind-mounted.
pub fn overlay_mounts(lowers: &[PathBuf], upper: &Path, work: &Path) -> Vec<Mount> {
    if lowers.is_empty() {
        return vec![Mount {
            kind: "bind".to_owned(),
            source: upper.display().to_string(),
            options: vec!["rbind".to_owned(), "rw".to_owned()],
        }];
    }
    let lowerdir = lowers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    vec![Mount {
        kind: "overlay".to_owned(),
        source: "overlay".to_owned(),
        options: vec![
            "index=off".to_owned(),
            format!("lowerdir={lowerdir}"),
            format!("upperdir={}", upper.display()),
            format!("workdir={}", work.display()),
        ],
    }]
}

/// Maximum size of the mount data the kernel copies (one page).
const PAGE_LIMIT: usize = 4096 - 1;

/// Perform `mounts` on `target` (in order). Overlay options longer than a
/// page are shortened by making the lower dirs relative to their common
/// parent and mounting from a thread whose working directory (unshared
/// from the rest of the process) is that parent.
pub fn mount(mounts: &[Mount], target: &Path) -> Result<()> {
    for m in mounts {
        mount_one(m, target)?;
    }
    Ok(())
}

fn mount_one(m: &Mount, target: &Path) -> Result<()> {
    let mount_err = |source: io::Error| Error::Mount {
        kind: m.kind.clone(),
        target: target.to_owned(),
        source,
    };
    if m.kind == "bind" {
        let recursive = m.options.iter().any(|o| o == "rbind");
        let flags = if recursive {
            rustix::mount::MountFlags::BIND | rustix::mount::MountFlags::REC
        } else {
            rustix::mount::MountFlags::BIND
        };
        return rustix::mount::mount(m.source.as_str(), target, "", flags, None)
            .map_err(|e| mount_err(e.into()));
    }
    let data = m.options.join(",");
    if data.len() <= PAGE_LIMIT {
        let data = CString::new(data)
            .map_err(|e| mount_err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        return rustix::mount::mount(
            m.source.as_str(),
            target,
            m.kind.as_str(),
            rustix::mount::MountFlags::empty(),
            Some(data.as_c_str()),
        )
        .map_err(|e| mount_err(e.into()));
    }
    mount_relative(m, target)
}

/// Rewrite `lowerdir=` relative to the common parent of its entries.
fn relative_options(options: &[String]) -> Option<(PathBuf, String)> {
    let mut parent: Option<PathBuf> = None;
    let mut out = Vec::new();
    for o in options {
        let Some(lowers) = o.strip_prefix("lowerdir=") else {
            out.push(o.clone());
            continue;
        };
        let mut rel = Vec::new();
        for l in lowers.split(':') {
            let p = Path::new(l);
            let dir = p.parent()?.to_owned();
            if parent.get_or_insert_with(|| dir.clone()) != &dir {
                return None;
            }
            rel.push(p.file_name()?.to_string_lossy().into_owned());
        }
        out.push(format!("lowerdir={}", rel.join(":")));
    }
    Some((parent?, out.join(",")))
}

fn mount_relative(m: &Mount, target: &Path) -> Result<()> {
    let too_long = |len| Error::OptionsTooLong {
        target: target.to_owned(),
        len,
        limit: PAGE_LIMIT,
    };
    let full_len = m.options.join(",").len();
    let (parent, data) = relative_options(&m.options).ok_or_else(|| too_long(full_len))?;
    if data.len() > PAGE_LIMIT {
        return Err(too_long(data.len()));
    }
    let target = std::path::absolute(target).map_err(io_err("resolve", target))?;
    let source = m.source.clone();
    let kind = m.kind.clone();
    let result = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            // SAFETY: unshare(CLONE_FS) only detaches this thread's cwd/root/umask
            // from the other threads; it takes no pointers.
            if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
                return Err(io::Error::last_os_error());
            }
            std::env::set_current_dir(&parent)?;
            let data =
                CString::new(data).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            rustix::mount::mount(
                source.as_str(),
                &target,
                kind.as_str(),
                rustix::mount::MountFlags::empty(),
                Some(data.as_c_str()),
            )?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("mount thread panicked")))
    });
    result.map_err(|source| Error::Mount {
        kind: m.kind.clone(),
        target,
        source,
    })
}

#[allow(clippy::unwrap_used)]
#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        s.parse().unwrap()
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = d("sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4");
        let b = d("sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef");
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        let expect = Digest::sha256_of(format!("{a} {b}").as_bytes());
        assert_eq!(chain[1], expect);
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn overlay_lowerdir_is_top_first() {
        let lowers = vec![PathBuf::from("/s/a"), PathBuf::from("/s/b")];
        let m = overlay_mounts(&lowers, Path::new("/c/upper"), Path::new("/c/work"));
        assert_eq!(m.len(), 1);
        assert!(m[0].options.contains(&"lowerdir=/s/b:/s/a".to_owned()));
        assert!(m[0].options.contains(&"upperdir=/c/upper".to_owned()));
        let (parent, data) = relative_options(&m[0].options).unwrap();
        assert_eq!(parent, PathBuf::from("/s"));
        assert!(data.contains("lowerdir=b:a"), "{data}");
    }

    #[test]
    fn temp_snapshot_commits_or_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshots::open(dir.path()).unwrap();
        let c = Digest::sha256_of(b"x");
        let t = s.temp_dir(&c).unwrap();
        let tp = t.path().to_owned();
        drop(t);
        assert!(!tp.exists());
        let t = s.temp_dir(&c).unwrap();
        fs::write(t.path().join("f"), b"1").unwrap();
        t.commit().unwrap();
        assert!(s.exists(&c));
        let (done, temps) = s.list().unwrap();
        assert_eq!(done, vec![c.encoded().to_owned()]);
        assert!(temps.is_empty());
        s.remove(c.encoded()).unwrap();
        assert!(!s.exists(&c));
    }
}
