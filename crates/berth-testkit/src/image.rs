//! Build test images as an OCI image layout (no umoci needed) and push them
//! to a registry with skopeo.
//!
//! ```no_run
//! use berth_testkit::image::{Layer, OciLayout};
//! let dir = tempfile::tempdir().unwrap();
//! let mut layout = OciLayout::create(dir.path()).unwrap();
//! let base = Layer::busybox().unwrap();
//! let top = Layer::new().file("etc/motd", b"hi\n", 0o644).whiteout("etc/hostname");
//! let m = layout.image(&[base, top], &["/bin/sh"], "linux", "amd64", None).unwrap();
//! layout.tag("latest", &m).unwrap();
//! // berth_testkit::image::push(dir.path(), "latest", "127.0.0.1:5000/test:latest").unwrap();
//! ```

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::write::GzEncoder;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// One entry of a layer.
#[derive(Debug, Clone)]
enum Entry {
    Dir(String, u32),
    File(String, Vec<u8>, u32),
    Symlink(String, String),
}

/// A layer under construction (entries in order).
#[derive(Debug, Clone, Default)]
pub struct Layer {
    entries: Vec<Entry>,
    /// a rootfs directory to include first (busybox)
    tree: Option<PathBuf>,
    _keep: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl Layer {
    /// An empty layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// A layer holding the busybox rootfs of [`crate::busybox_rootfs`].
    pub fn busybox() -> io::Result<Self> {
        let dir = tempfile::tempdir()?;
        crate::busybox_rootfs(dir.path())?;
        Ok(Self {
            entries: Vec::new(),
            tree: Some(dir.path().to_owned()),
            _keep: Some(std::sync::Arc::new(dir)),
        })
    }

    /// Add a directory.
    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        self.entries.push(Entry::Dir(path.to_owned(), mode));
        self
    }

    /// Add a regular file.
    pub fn file(mut self, path: &str, data: &[u8], mode: u32) -> Self {
        self.entries
            .push(Entry::File(path.to_owned(), data.to_vec(), mode));
        self
    }

    /// Add a file of `len` random (incompressible) bytes.
    pub fn random_file(self, path: &str, len: usize) -> Self {
        let mut data = vec![0u8; len];
        fill_random(&mut data);
        self.file(path, &data, 0o644)
    }

    /// Add a symlink.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.entries
            .push(Entry::Symlink(path.to_owned(), target.to_owned()));
        self
    }

    /// Delete `path` of a lower layer (`dir/.wh.name`).
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (format!("{d}/"), n),
            None => (String::new(), path),
        };
        self.file(&format!("{dir}.wh.{name}"), b"", 0o644)
    }

    /// Hide everything lower layers put in `dir` (`dir/.wh..wh..opq`).
    pub fn opaque(self, dir: &str) -> Self {
        self.dir(dir, 0o755)
            .file(&format!("{dir}/.wh..wh..opq"), b"", 0o644)
    }

    /// The uncompressed tar.
    pub fn tar(&self) -> io::Result<Vec<u8>> {
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(false);
        if let Some(tree) = &self.tree {
            b.append_dir_all(".", tree)?;
        }
        for e in &self.entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(1_700_000_000);
            h.set_uid(0);
            h.set_gid(0);
            match e {
                Entry::Dir(p, mode) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(*mode);
                    h.set_size(0);
                    b.append_data(&mut h, format!("{p}/"), io::empty())?;
                }
                Entry::File(p, data, mode) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*mode);
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, p, data.as_slice())?;
                }
                Entry::Symlink(p, target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    b.append_link(&mut h, p, target)?;
                }
            }
        }
        b.into_inner()
    }
}

/// Fill `buf` with pseudo-random bytes (xorshift seeded from the clock and
/// a counter: distinct per call, incompressible for gzip).
pub fn fill_random(buf: &mut [u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(1);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    let mut x =
        t ^ SEQ.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed) ^ u64::from(std::process::id());
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// An OCI image layout directory being written.
pub struct OciLayout {
    dir: PathBuf,
    index: Vec<Value>,
    gzip_level: u32,
}

/// A descriptor written into the layout.
#[derive(Debug, Clone)]
pub struct Desc {
    /// the descriptor JSON
    pub json: Value,
    /// its digest
    pub digest: String,
}

impl OciLayout {
    /// Create `dir/oci-layout`, `dir/blobs/sha256`.
    pub fn create(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir.join("blobs/sha256"))?;
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        Ok(Self {
            dir: dir.to_owned(),
            index: Vec::new(),
            gzip_level: 1,
        })
    }

    /// gzip level for layers written from now on (default 1; 0 = stored
    /// blocks only, as Go's gzip emits for incompressible data).
    pub fn set_gzip_level(&mut self, level: u32) {
        self.gzip_level = level.min(9);
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write a blob; returns its digest.
    pub fn blob(&self, data: &[u8]) -> io::Result<String> {
        let d = sha256(data);
        std::fs::write(self.dir.join("blobs/sha256").join(&d[7..]), data)?;
        Ok(d)
    }

    /// Write an image (gzip layers, config, manifest) and return the
    /// manifest's descriptor (with platform).
    pub fn image(
        &mut self,
        layers: &[Layer],
        cmd: &[&str],
        os: &str,
        arch: &str,
        variant: Option<&str>,
    ) -> io::Result<Desc> {
        let mut diff_ids = Vec::new();
        let mut descs = Vec::new();
        for l in layers {
            let tar = l.tar()?;
            diff_ids.push(sha256(&tar));
            let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::new(self.gzip_level));
            gz.write_all(&tar)?;
            let gz = gz.finish()?;
            let d = self.blob(&gz)?;
            descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": gz.len()}));
        }
        let mut platform = json!({"os": os, "architecture": arch});
        if let Some(v) = variant {
            platform["variant"] = json!(v);
        }
        let mut config = platform.clone();
        config["created"] = json!("2024-01-01T00:00:00Z");
        config["config"] = json!({"Cmd": cmd, "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]});
        config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
        let config = serde_json::to_vec(&config)?;
        let cd = self.blob(&config)?;
        let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
            "layers": descs});
        let manifest = serde_json::to_vec(&manifest)?;
        let md = self.blob(&manifest)?;
        Ok(Desc {
            json: json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len(), "platform": platform}),
            digest: md,
        })
    }

    /// Write an image from uncompressed `layers` and the image config
    /// `config` (its `rootfs` is filled in here); returns the manifest's
    /// descriptor (without platform).
    pub fn image_with_config(&mut self, layers: &[Layer], mut config: Value) -> io::Result<Desc> {
        let mut diff_ids = Vec::new();
        let mut descs = Vec::new();
        for layer in layers {
            let tar = layer.tar()?;
            diff_ids.push(sha256(&tar));
            let d = self.blob(&tar)?;
            descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": tar.len()}));
        }
        config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
        let config = serde_json::to_vec(&config)?;
        let cd = self.blob(&config)?;
        let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
            "layers": descs});
        let manifest = serde_json::to_vec(&manifest)?;
        let md = self.blob(&manifest)?;
        Ok(Desc {
            json: json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len()}),
            digest: md,
        })
    }

    /// Write an image index over `manifests`; returns its descriptor.
    pub fn index(&self, manifests: &[Desc]) -> io::Result<Desc> {
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests.iter().map(|m| m.json.clone()).collect::<Vec<_>>()});
        let bytes = serde_json::to_vec(&index)?;
        let d = self.blob(&bytes)?;
        Ok(Desc {
            json: json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": bytes.len()}),
            digest: d,
        })
    }

    /// Name `desc` as `tag` in the layout's `index.json`.
    pub fn tag(&mut self, tag: &str, desc: &Desc) -> io::Result<()> {
        let mut d = desc.json.clone();
        if let Some(o) = d.as_object_mut() {
            o.remove("platform");
        }
        d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.index.push(d);
        let index = json!({"schemaVersion": 2, "manifests": self.index});
        std::fs::write(self.dir.join("index.json"), serde_json::to_vec(&index)?)
    }
}

/// `skopeo copy --all oci:LAYOUT:TAG docker://DEST` over plain HTTP.
pub fn push(layout: &Path, tag: &str, dest: &str) -> io::Result<()> {
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{dest}"))
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "skopeo copy to {dest} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// `skopeo inspect --raw docker://REFERENCE` over plain HTTP (with
/// `--creds=USER:PASS` when given): the manifest bytes the registry serves.
pub fn raw_manifest(reference: &str, creds: Option<&str>) -> io::Result<Vec<u8>> {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(c) = creds {
        cmd.arg(format!("--creds={c}"));
    }
    let out = cmd.arg(format!("docker://{reference}")).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "skopeo inspect --raw {reference} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(out.stdout)
}
