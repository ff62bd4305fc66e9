//! Image → OCI bundle: `DIR/config.json` built from the image config on top
//! of Docker's defaults, and `DIR/rootfs`, an overlay of the image's layer
//! directories with a writable upper layer private to the bundle
//! (`DIR/upper`, `DIR/work`; the mounts come from
//! [`ImageStore::prepare_rw`]). `keel run -b DIR id` (or runc) runs it;
//! [`remove_bundle`] unmounts and deletes it.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rustix::mount::UnmountFlags;
use serde::{Deserialize, Serialize};

use crate::snapshot;
use crate::spec::{self, user};
use crate::store::{self, ImageRecord, ImageStore};

/// Marks a directory as a bundle made by berth; [`remove_bundle`] deletes
/// nothing without it.
const MARKER: &str = ".berth-bundle.json";
/// `<data-root>/bundles/<id>.json`: the bundles whose rootfs mounts the
/// store's layers, so that `rmi` and `prune` leave their images alone.
const BUNDLES_DIR: &str = "bundles";

/// Annotation naming the image a bundle was made from.
pub const ANNOTATION_IMAGE_NAME: &str = "io.berth.image.name";
/// Annotation holding the image id (config digest).
pub const ANNOTATION_IMAGE_ID: &str = "io.berth.image.id";

/// Errors creating or removing a bundle.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// looking the image up failed
    #[error(transparent)]
    Store(#[from] store::Error),
    /// building config.json failed
    #[error(transparent)]
    Spec(#[from] spec::Error),
    /// overlay mounts need CAP_SYS_ADMIN
    #[error("creating a bundle mounts an overlay filesystem and needs root (run berth as root)")]
    NotRoot,
    /// the bundle directory has other files in it
    #[error("bundle directory {0} exists and is not empty")]
    NotEmpty(PathBuf),
    /// `--id` with characters a file name cannot hold
    #[error("invalid container id {0:?}: use letters, digits, '_', '.' and '-'")]
    InvalidId(String),
    /// `unbundle` of a directory berth did not create
    #[error("{0} is not a bundle created by berth (no {MARKER})")]
    NotABundle(PathBuf),
    /// a file operation in the bundle directory failed
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// the overlay mount failed
    #[error(transparent)]
    Mount(#[from] snapshot::Error),
    /// the rootfs could not be unmounted
    #[error("unmounting {path} (is a container still using it?)")]
    Unmount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// config.json could not be encoded
    #[error("encoding {path}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Network setup of the container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// a private network namespace with only loopback (`--network none`)
    #[default]
    None,
    /// the host's network namespace (`--network host`)
    Host,
}

/// How the container differs from what the image says (`docker run` flags).
#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    /// `--entrypoint`: replaces the image's Entrypoint and drops its Cmd;
    /// `Some(vec![])` clears the Entrypoint
    pub entrypoint: Option<Vec<String>>,
    /// arguments after the image name: replace the image's Cmd when non-empty
    pub cmd: Vec<String>,
    /// `-e NAME=value` (`NAME` alone removes the variable)
    pub env: Vec<String>,
    /// `-u user[:group]`
    pub user: Option<String>,
    /// `-w DIR`
    pub workdir: Option<String>,
    /// `-h NAME` (default: the first 12 characters of the container id)
    pub hostname: Option<String>,
    /// `-t`
    pub tty: bool,
    /// `--read-only`
    pub read_only: bool,
    /// `--cap-add`
    pub cap_add: Vec<String>,
    /// `--cap-drop`
    pub cap_drop: Vec<String>,
    /// `--network none|host`
    pub network: NetworkMode,
    /// `-m` in bytes
    pub memory: Option<i64>,
    /// `--pids-limit`
    pub pids_limit: Option<i64>,
    /// the container id (default: 64 random hex digits)
    pub id: Option<String>,
}

/// What [`create_bundle`] made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleInfo {
    /// the container id the bundle was made for
    pub id: String,
    /// the container's hostname
    pub hostname: String,
    /// the image name as the store records it
    pub image: String,
    /// the image id (config digest)
    pub image_id: String,
    /// the bundle directory
    pub dir: PathBuf,
    /// the data root of the store whose layers the rootfs mounts
    pub data_root: PathBuf,
}

/// Make an OCI bundle of `image` in `dir` (created if missing; must be
/// empty). Needs root for the overlay mount. On failure nothing is left
/// mounted and `dir` is removed again.
pub fn create_bundle(
    store: &ImageStore,
    image: &str,
    dir: &Path,
    opts: &BundleOptions,
) -> Result<BundleInfo, Error> {
    let record = store.resolve(image)?;
    let config = store.config(&record)?;
    let image_id = record.id.to_string();
    if !rustix::process::geteuid().is_root() {
        return Err(Error::NotRoot);
    }
    let id = match &opts.id {
        Some(id) if !valid_id(id) => return Err(Error::InvalidId(id.clone())),
        Some(id) => id.clone(),
        None => random_id(dir)?,
    };
    let hostname = hostname(opts, &id);
    let info = BundleInfo {
        id,
        hostname,
        image: record.name.clone(),
        image_id,
        dir: std::path::absolute(dir).map_err(io_err("resolving", dir))?,
        data_root: store.data_root().to_owned(),
    };

    prepare_dir(dir, &info)?;
    let cleanup = Cleanup(dir);
    mount_rootfs(store, &record, dir)?;
    let (passwd, group) = user::read_user_files(&dir.join("rootfs")).map_err(spec::Error::from)?;
    let user_spec = opts
        .user
        .clone()
        .or_else(|| config.config().as_ref().and_then(|c| c.user().clone()));
    let exec_user = user::resolve(
        user_spec.as_deref().unwrap_or(""),
        passwd.as_deref(),
        group.as_deref(),
    )
    .map_err(spec::Error::from)?;
    let mut runtime_spec = spec::from_image(&config, opts, &exec_user, &info.hostname)?;
    let mut annotations = runtime_spec.annotations().clone().unwrap_or_default();
    annotations.insert(ANNOTATION_IMAGE_NAME.to_owned(), info.image.clone());
    annotations.insert(ANNOTATION_IMAGE_ID.to_owned(), info.image_id.clone());
    runtime_spec.set_annotations(Some(annotations));
    write_json(&dir.join("config.json"), &runtime_spec)?;
    register(&info)?;
    std::mem::forget(cleanup);
    Ok(info)
}

/// Unmount `dir/rootfs` and delete the bundle directory. Refuses
/// directories [`create_bundle`] did not make, and deletes nothing while
/// the rootfs is still mounted.
pub fn remove_bundle(dir: &Path) -> Result<(), Error> {
    if !dir.join(MARKER).is_file() {
        return Err(Error::NotABundle(dir.to_owned()));
    }
    let rootfs = dir.join("rootfs");
    unmount(&rootfs)?;
    if let Ok(info) = bundle_info(dir) {
        unregister(&info);
    }
    fs::remove_dir_all(dir).map_err(|source| Error::Io {
        what: "removing",
        path: dir.to_owned(),
        source,
    })
}

/// Read back what [`create_bundle`] recorded about a bundle.
pub fn bundle_info(dir: &Path) -> Result<BundleInfo, Error> {
    let path = dir.join(MARKER);
    let text = fs::read_to_string(&path).map_err(|_| Error::NotABundle(dir.to_owned()))?;
    serde_json::from_str(&text).map_err(|source| Error::Json { path, source })
}

/// The bundles made from `store` that still exist (entries whose
/// directory is gone or was reused are dropped).
pub fn live_bundles(store: &ImageStore) -> Vec<BundleInfo> {
    let Ok(entries) = fs::read_dir(store.data_root().join(BUNDLES_DIR)) else {
        return Vec::new();
    };
    let mut live = Vec::new();
    for entry in entries.flatten() {
        if entry.path().extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let recorded: Option<BundleInfo> = fs::read(entry.path())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        match recorded {
            Some(info) if bundle_info(&info.dir).is_ok_and(|now| now.id == info.id) => {
                live.push(info)
            }
            _ => {
                // A stale record: its bundle is gone or was replaced. Failing
                // to prune it only means it is checked again next time.
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    live
}

fn record_path(info: &BundleInfo) -> PathBuf {
    info.data_root
        .join(BUNDLES_DIR)
        .join(format!("{}.json", info.id))
}

fn register(info: &BundleInfo) -> Result<(), Error> {
    let dir = info.data_root.join(BUNDLES_DIR);
    fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
    write_json(&record_path(info), info)
}

/// Best effort: a record whose bundle is gone is pruned by the next listing.
fn unregister(info: &BundleInfo) {
    let _ = fs::remove_file(record_path(info));
}

/// Removes a half-made bundle when creation fails.
struct Cleanup<'a>(&'a Path);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Err(err) = remove_bundle(self.0) {
            tracing::warn!(dir = %self.0.display(), error = %err, "cleaning up a failed bundle");
        }
    }
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

fn hostname(opts: &BundleOptions, id: &str) -> String {
    if let Some(name) = &opts.hostname {
        return name.clone();
    }
    if opts.network == NetworkMode::Host {
        // as Docker: a container sharing the host's network takes its name
        if let Ok(name) = fs::read_to_string("/proc/sys/kernel/hostname") {
            return name.trim().to_owned();
        }
    }
    id.chars().take(12).collect()
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn random_id(dir: &Path) -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_err("reading /dev/urandom for the id of", dir))?;
    Ok(hex::encode(bytes))
}

/// Create `dir` (empty), its marker and `rootfs`.
fn prepare_dir(dir: &Path, info: &BundleInfo) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    let mut entries = fs::read_dir(dir).map_err(io_err("reading", dir))?;
    if entries.next().is_some() {
        return Err(Error::NotEmpty(dir.to_owned()));
    }
    write_json(&dir.join(MARKER), info)?;
    let rootfs = dir.join("rootfs");
    fs::create_dir(&rootfs).map_err(io_err("creating", &rootfs))
}

/// Mount the image's layers (read-only lowers) and `dir/upper` on `dir/rootfs`.
fn mount_rootfs(store: &ImageStore, record: &ImageRecord, dir: &Path) -> Result<(), Error> {
    let mounts = store.prepare_rw(record, dir)?;
    snapshot::mount(&mounts, &dir.join("rootfs"))?;
    Ok(())
}

/// Whether something is mounted on `path` (per /proc/self/mountinfo, which
/// also sees a bind mount from the same filesystem).
fn is_mountpoint(path: &Path) -> bool {
    let Ok(path) = fs::canonicalize(path) else {
        return false;
    };
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.to_string_lossy();
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|point| unescape_mountinfo(point) == wanted)
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unmount(rootfs: &Path) -> Result<(), Error> {
    if !is_mountpoint(rootfs) {
        return Ok(());
    }
    let result = match rustix::mount::unmount(rootfs, UnmountFlags::empty()) {
        Err(rustix::io::Errno::BUSY) => rustix::mount::unmount(rootfs, UnmountFlags::DETACH),
        other => other,
    };
    result.map_err(|errno| Error::Unmount {
        path: rootfs.to_owned(),
        source: errno.into(),
    })?;
    if is_mountpoint(rootfs) {
        return Err(Error::Unmount {
            path: rootfs.to_owned(),
            source: std::io::Error::other("still mounted"),
        });
    }
    Ok(())
}

/// Write `value` as JSON to `path` atomically (temp file, fsync, rename).
fn write_json(path: &Path, value: &impl Serialize) -> Result<(), Error> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| Error::Json {
        path: path.to_owned(),
        source,
    })?;
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(io_err("creating", &tmp))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err("writing", &tmp))?;
    fs::rename(&tmp, path).map_err(io_err("renaming", &tmp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert!(is_mountpoint(Path::new("/proc")));
        assert!(!is_mountpoint(Path::new("/proc/self")));
    }

    #[test]
    fn container_ids_are_file_names() {
        for (id, ok) in [
            ("abc", true),
            ("web-1.x_y", true),
            ("", false),
            ("../x", false),
            (".x", false),
        ] {
            assert_eq!(valid_id(id), ok, "{id:?}");
        }
    }

    #[test]
    fn hostname_defaults_to_the_short_id() {
        let opts = BundleOptions::default();
        assert_eq!(hostname(&opts, "0123456789abcdef"), "0123456789ab");
        let opts = BundleOptions {
            hostname: Some("web".into()),
            ..Default::default()
        };
        assert_eq!(hostname(&opts, "0123456789abcdef"), "web");
    }

    #[test]
    fn only_berth_bundles_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("precious"), "x").expect("write");
        assert!(matches!(
            remove_bundle(dir.path()),
            Err(Error::NotABundle(_))
        ));
        assert!(dir.path().join("precious").exists());
    }
}
