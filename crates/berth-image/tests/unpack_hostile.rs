//! Hostile layer tars, one by one: nothing is ever written outside the layer
//! directory, and each case gets a clear error or Docker's sanitisation.
//! These run unprivileged (as root they also pass: the checks are the same).

#![allow(clippy::unwrap_used)] // a panic is how a test reports failure

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_image::unpack::{unpack_layer, Compression, Error, Options};
use berth_testkit::tarfix::{RawEntry, RawTar};

/// `base/layer` (the destination) beside `base/outside` (a sentinel dir with
/// one file); the whole of `base` outside `layer` is compared before/after.
struct Sandbox {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    layer: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_owned();
        let layer = base.join("a/b/layer");
        fs::create_dir_all(&layer).unwrap();
        fs::create_dir_all(base.join("outside")).unwrap();
        fs::write(base.join("outside/secret"), b"secret").unwrap();
        fs::write(base.join("a/b/sibling"), b"sibling").unwrap();
        Self {
            _tmp: tmp,
            base,
            layer,
        }
    }

    fn outside(&self) -> PathBuf {
        self.base.join("outside")
    }

    /// Every path under `base` except those inside the layer, with contents.
    fn world(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        walk(&self.base, &self.layer, &mut out);
        out.sort();
        out
    }

    /// Unpack `tar` and check the world outside the layer did not change.
    fn unpack(&self, tar: Vec<u8>) -> Result<berth_image::unpack::Stats, Error> {
        let before = self.world();
        let r = unpack_layer(
            &tar[..],
            Compression::None,
            &self.layer,
            &Options::default(),
        );
        assert_eq!(
            before,
            self.world(),
            "something was written outside the layer dir"
        );
        r
    }
}

fn walk(dir: &Path, skip: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p == skip {
            continue;
        }
        let m = fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            out.push((p.clone(), Vec::new()));
            walk(&p, skip, out);
        } else {
            out.push((p.clone(), fs::read(&p).unwrap_or_default()));
        }
    }
}

fn err_text(r: Result<berth_image::unpack::Stats, Error>) -> String {
    r.expect_err("the tar should be refused").to_string()
}

#[test]
fn dotdot_name_is_refused() {
    let sb = Sandbox::new();
    let msg = err_text(sb.unpack(RawTar::new().file("../evil", "x").finish()));
    assert_eq!(
        msg,
        "layer entry \"../evil\": path escapes the layer directory"
    );
    let msg = err_text(
        sb.unpack(
            RawTar::new()
                .file("x/../../../outside/secret", "x")
                .finish(),
        ),
    );
    assert!(msg.contains("path escapes the layer directory"), "{msg}");
}

#[test]
fn absolute_names_are_rooted_in_the_layer() {
    let sb = Sandbox::new();
    let tar = RawTar::new()
        .file("/etc/passwd", "root")
        .file("/../../../outside/secret", "pwned")
        .finish();
    sb.unpack(tar).unwrap();
    assert_eq!(fs::read(sb.layer.join("etc/passwd")).unwrap(), b"root");
    assert_eq!(fs::read(sb.layer.join("outside/secret")).unwrap(), b"pwned");
}

#[test]
fn relative_symlink_out_of_the_layer_is_refused() {
    let sb = Sandbox::new();
    let tar = RawTar::new().symlink("up", "../../../outside").finish();
    let msg = err_text(sb.unpack(tar));
    assert!(
        msg.contains("link target \"../../../outside\" points outside"),
        "{msg}"
    );
}

#[test]
fn file_through_absolute_symlink_stays_inside() {
    let sb = Sandbox::new();
    let host_dir = sb.outside();
    let tar = RawTar::new()
        .symlink("root", "/")
        .file("root/escaped", "x")
        .symlink("host", host_dir.as_os_str().as_encoded_bytes())
        .file("host/pwned", "x")
        .finish();
    // `root/escaped` lands in the layer root (symlinks resolve inside the
    // layer, as in Docker's chroot); `host/` names a directory that does not
    // exist inside the layer, so that entry fails, naming itself.
    let msg = err_text(sb.unpack(tar));
    assert!(msg.starts_with("layer entry \"host/pwned\""), "{msg}");
    assert_eq!(fs::read(sb.layer.join("escaped")).unwrap(), b"x");
    assert!(!host_dir.join("pwned").exists());
}

#[test]
fn file_replaces_symlink_instead_of_writing_through_it() {
    let sb = Sandbox::new();
    let secret = sb.outside().join("secret");
    let tar = RawTar::new()
        .symlink("s", secret.as_os_str().as_encoded_bytes())
        .file("s", "pwned")
        .finish();
    sb.unpack(tar).unwrap();
    assert_eq!(fs::read(sb.layer.join("s")).unwrap(), b"pwned");
    assert!(fs::symlink_metadata(sb.layer.join("s")).unwrap().is_file());
}

#[test]
fn hard_link_out_of_the_layer_is_refused() {
    let sb = Sandbox::new();
    let msg = err_text(
        sb.unpack(
            RawTar::new()
                .hardlink("h", "../../../outside/secret")
                .finish(),
        ),
    );
    assert!(msg.contains("points outside the layer directory"), "{msg}");
    // An absolute target is taken inside the layer: the host's file is never linked.
    let secret = sb.outside().join("secret");
    let tar = RawTar::new()
        .hardlink("h", secret.as_os_str().as_encoded_bytes())
        .finish();
    let msg = err_text(sb.unpack(tar));
    assert!(msg.contains("create hard link failed"), "{msg}");
    assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1);
}

#[test]
fn hard_link_to_escaping_symlink_links_the_symlink_itself() {
    let sb = Sandbox::new();
    let secret = sb.outside().join("secret");
    let tar = RawTar::new()
        .symlink("s", secret.as_os_str().as_encoded_bytes())
        .hardlink("h", "s")
        .file("h", "pwned")
        .finish();
    sb.unpack(tar).unwrap();
    assert!(fs::symlink_metadata(sb.layer.join("s"))
        .unwrap()
        .is_symlink());
    assert_eq!(fs::read(sb.layer.join("h")).unwrap(), b"pwned");
    assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1);
}

#[test]
fn hard_link_through_symlinked_dir_stays_inside() {
    let sb = Sandbox::new();
    let tar = RawTar::new()
        .symlink("d", "/")
        .file("f", "inside")
        .hardlink("h", "d/../../../f")
        .finish();
    let msg = err_text(sb.unpack(tar));
    assert!(msg.contains("points outside"), "{msg}");
    let tar = RawTar::new()
        .symlink("d", "/")
        .file("f", "inside")
        .hardlink("h", "d/f")
        .finish();
    sb.unpack(tar).unwrap();
    assert_eq!(fs::read(sb.layer.join("h")).unwrap(), b"inside");
}

#[test]
fn bad_whiteouts_are_refused() {
    let sb = Sandbox::new();
    for name in [".wh..", ".wh.", "x/.wh.."] {
        let tar = RawTar::new().dir("x").file(name, "").finish();
        let msg = err_text(sb.unpack(tar));
        assert_eq!(msg, format!("layer entry {name:?}: invalid whiteout"));
    }
    let msg = err_text(sb.unpack(RawTar::new().file("../.wh.outside", "").finish()));
    assert!(msg.contains("path escapes"), "{msg}");
    // aufs metadata entries are ignored, as Docker does.
    let sb = Sandbox::new();
    sb.unpack(RawTar::new().file(".wh..wh.plnk/1.2", "").finish())
        .unwrap();
    assert!(fs::read_dir(&sb.layer).unwrap().next().is_none());
}

#[test]
fn whiteout_of_a_directory_through_symlink_stays_inside() {
    let sb = Sandbox::new();
    let outside = sb.outside();
    let tar = RawTar::new()
        .symlink("o", outside.as_os_str().as_encoded_bytes())
        .dir("o")
        .file("o/.wh.secret", "")
        .finish();
    // `o` is replaced by a real directory (later entry wins); the whiteout is
    // made inside it. The host's outside/secret is never touched.
    sb.unpack(tar).unwrap();
    assert!(fs::symlink_metadata(sb.layer.join("o")).unwrap().is_dir());
    assert!(outside.join("secret").exists());
}

#[test]
fn duplicates_later_entry_wins() {
    let sb = Sandbox::new();
    let tar = RawTar::new()
        .file("a", "file")
        .dir("a")
        .file("a/inner", "x")
        .dir("b")
        .file("b/inner", "x")
        .file("b", "now a file")
        .symlink("c", "/etc")
        .file("c", "now a file")
        .file("d", "one")
        .file("d", "two")
        .file("e", "x")
        .symlink("e", "a")
        .finish();
    sb.unpack(tar).unwrap();
    let l = &sb.layer;
    assert_eq!(fs::read(l.join("a/inner")).unwrap(), b"x");
    assert_eq!(fs::read(l.join("b")).unwrap(), b"now a file");
    assert_eq!(fs::read(l.join("c")).unwrap(), b"now a file");
    assert_eq!(fs::read(l.join("d")).unwrap(), b"two");
    assert_eq!(fs::read_link(l.join("e")).unwrap(), Path::new("a"));
}

#[test]
fn overlay_xattrs_from_the_tar_are_dropped() {
    let sb = Sandbox::new();
    let mut e = RawEntry::new(b'5', "d");
    e.pax
        .push(("SCHILY.xattr.user.overlay.opaque".into(), b"y".to_vec()));
    e.pax
        .push(("SCHILY.xattr.user.berth".into(), b"kept".to_vec()));
    sb.unpack(RawTar::new().entry(e).finish()).unwrap();
    let d = sb.layer.join("d");
    assert!(rustix::fs::getxattr(&d, "user.overlay.opaque", &mut [0u8; 8]).is_err());
    let mut buf = [0u8; 8];
    let n = rustix::fs::getxattr(&d, "user.berth", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"kept");
}

#[test]
fn pax_sparse_is_refused_clearly() {
    let sb = Sandbox::new();
    let mut e = RawEntry::new(b'0', "GNUSparseFile.0/big");
    e.pax.push(("GNU.sparse.major".into(), b"1".to_vec()));
    e.pax.push(("GNU.sparse.minor".into(), b"0".to_vec()));
    let msg = err_text(sb.unpack(RawTar::new().entry(e).finish()));
    assert!(
        msg.contains("PAX (GNU 1.0) sparse file is not supported"),
        "{msg}"
    );
}

#[test]
fn gnu_sparse_keeps_holes_and_respects_the_limit() {
    let sb = Sandbox::new();
    let apparent = 64 << 20;
    // Every chunk but the last is a multiple of 512 bytes (GNU's rule).
    let mut head = b"head".to_vec();
    head.resize(512, b'h');
    let chunks: [(u64, &[u8]); 3] = [(0, &head), (32 << 20, b"middle"), (apparent, b"")];
    let tar = berth_testkit::tarfix::gnu_sparse("sparse", apparent, &chunks);
    sb.unpack(tar.clone()).unwrap();
    let p = sb.layer.join("sparse");
    let m = fs::metadata(&p).unwrap();
    assert_eq!(m.len(), apparent);
    assert!(
        m.blocks() * 512 < (1 << 20),
        "holes were written out: {} blocks",
        m.blocks()
    );
    let data = fs::read(&p).unwrap();
    assert_eq!(&data[..4], b"head");
    assert_eq!(&data[32 << 20..(32 << 20) + 6], b"middle");

    let sb = Sandbox::new();
    let opts = Options {
        max_sparse_size: 1 << 20,
        ..Options::default()
    };
    let err = unpack_layer(&tar[..], Compression::None, &sb.layer, &opts).unwrap_err();
    assert!(
        err.to_string()
            .contains("sparse file larger than the sparse size limit"),
        "{err}"
    );
}

#[test]
fn huge_file_is_streamed() {
    // 256 MiB of data from a generator: never held in memory by the test or
    // by the unpacker.
    let sb = Sandbox::new();
    let size: u64 = 256 << 20;
    let mut e = RawEntry::new(b'0', "big");
    e.data = Vec::new();
    let mut header = RawTar::new().entry(e).finish();
    header.truncate(512);
    // Patch the size field and its checksum.
    let field = format!("{size:011o}\0");
    header[124..136].copy_from_slice(field.as_bytes());
    header[148..156].fill(b' ');
    let sum: u64 = header.iter().map(|b| u64::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let body = std::io::Read::take(std::io::repeat(7), size);
    let tail = std::io::Cursor::new(vec![0u8; 1024]);
    let stream = std::io::Read::chain(std::io::Read::chain(&header[..], body), tail);
    let stats = unpack_layer(stream, Compression::None, &sb.layer, &Options::default()).unwrap();
    assert_eq!(fs::metadata(sb.layer.join("big")).unwrap().len(), size);
    assert_eq!(stats.bytes, 512 + size + 1024);
}

#[test]
fn truncated_and_garbage_input_fail_cleanly() {
    let sb = Sandbox::new();
    let mut tar = RawTar::new().file("f", vec![1u8; 4096]).finish();
    tar.truncate(1024);
    assert!(sb.unpack(tar).is_err());
    let err = unpack_layer(
        &b"not gzip at all"[..],
        Compression::Gzip,
        &sb.layer,
        &Options::default(),
    );
    assert_eq!(err.unwrap_err().to_string(), "reading layer tar");
}

/// A ustar header block for a raw entry of `size` bytes (data not included).
fn raw_header(kind: u8, name: &str, size: u64) -> Vec<u8> {
    let mut h = RawTar::new().entry(RawEntry::new(kind, name)).finish();
    h.truncate(512);
    set_size(&mut h, size);
    h
}

fn set_size(h: &mut [u8], size: u64) {
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[148..156].fill(b' ');
    let sum: u64 = h[..512].iter().map(|b| u64::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

#[test]
fn oversized_long_name_and_pax_entries_are_refused_before_buffering() {
    for kind in [b'L', b'x'] {
        let sb = Sandbox::new();
        let size: u64 = 1 << 30; // would be a 1 GiB allocation in the tar reader
        let header = raw_header(kind, "././@LongLink", size);
        let body = std::io::Read::take(std::io::repeat(b'a'), size);
        let stream = std::io::Read::chain(&header[..], body);
        let err =
            unpack_layer(stream, Compression::None, &sb.layer, &Options::default()).unwrap_err();
        let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(chain.contains("exceeds the 1048576-byte limit"), "{chain}");
    }
}

#[test]
fn pax_size_override_keeps_the_framing() {
    // The PAX record says 5 bytes; the ustar size field says 0 (as for
    // sizes ustar cannot hold). The next entry must still be found.
    let mut big = RawEntry::new(b'0', "sized");
    big.data = b"hello".to_vec();
    big.pax.push(("size".into(), b"5".to_vec()));
    let mut tar = RawTar::new().entry(big).file("after", "x").finish();
    let at = tar.windows(5).position(|w| w == b"sized").unwrap();
    set_size(&mut tar[at..at + 512], 0);
    let sb = Sandbox::new();
    sb.unpack(tar).unwrap();
    assert_eq!(fs::read(sb.layer.join("sized")).unwrap(), b"hello");
    assert_eq!(fs::read(sb.layer.join("after")).unwrap(), b"x");
}
