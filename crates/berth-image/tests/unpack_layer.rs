//! What a layer unpack preserves: content, modes, ownership, mtimes, xattrs,
//! links, device nodes, whiteouts; every compression; the DiffID.

#![allow(clippy::unwrap_used)] // a panic is how a test reports failure

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use berth_image::unpack::{unpack_layer, Compression, Options};
use berth_image::Digest;
use berth_testkit::tarfix::{RawEntry, RawTar};

fn header(kind: tar::EntryType, mode: u32, uid: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(uid + 1);
    h.set_mtime(mtime);
    h.set_size(0);
    h
}

/// A layer built with the `tar` crate: a GNU long name, modes with
/// setuid/sticky bits, owners, mtimes, a hard link and a symlink.
fn sample_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(
        &mut header(tar::EntryType::Directory, 0o755, 0, 1_500_000_000),
        "usr/",
        &[][..],
    )
    .unwrap();
    b.append_data(
        &mut header(tar::EntryType::Directory, 0o1777, 0, 1_500_000_001),
        "tmp/",
        &[][..],
    )
    .unwrap();
    let mut h = header(tar::EntryType::Regular, 0o4755, 1000, 1_500_000_002);
    h.set_size(5);
    b.append_data(&mut h, "usr/suid", &b"hello"[..]).unwrap();
    let long = format!("usr/{}/file", "x".repeat(150));
    let mut h = header(tar::EntryType::Regular, 0o600, 0, 1_500_000_003);
    h.set_size(4);
    b.append_data(&mut h, &long, &b"long"[..]).unwrap();
    let mut h = header(tar::EntryType::Link, 0o4755, 1000, 1_500_000_002);
    b.append_link(&mut h, "usr/hard", "usr/suid").unwrap();
    let mut h = header(tar::EntryType::Symlink, 0o777, 0, 1_500_000_004);
    b.append_link(&mut h, "usr/sym", "suid").unwrap();
    b.into_inner().unwrap()
}

fn check_sample(dir: &Path, root: bool) {
    let m = fs::metadata(dir.join("usr/suid")).unwrap();
    assert_eq!(fs::read(dir.join("usr/suid")).unwrap(), b"hello");
    assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(m.mtime(), 1_500_000_002);
    if root {
        assert_eq!((m.uid(), m.gid()), (1000, 1001));
    }
    let hard = fs::metadata(dir.join("usr/hard")).unwrap();
    assert_eq!(hard.ino(), m.ino());
    assert_eq!(
        fs::read_link(dir.join("usr/sym")).unwrap(),
        Path::new("suid")
    );
    assert_eq!(
        fs::symlink_metadata(dir.join("usr/sym")).unwrap().mtime(),
        1_500_000_004
    );
    let tmp = fs::metadata(dir.join("tmp")).unwrap();
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
    assert_eq!(tmp.mtime(), 1_500_000_001);
    // The directory's mtime is the header's, although files were created in it later.
    assert_eq!(
        fs::metadata(dir.join("usr")).unwrap().mtime(),
        1_500_000_000
    );
    let long = dir.join(format!("usr/{}/file", "x".repeat(150)));
    assert_eq!(fs::read(long).unwrap(), b"long");
}

#[test]
fn every_compression_gives_the_same_tree_and_diff_id() {
    let tar = sample_tar();
    let diff_id = Digest::sha256_of(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    for (blob, c) in [
        (&tar, Compression::None),
        (&gz, Compression::Gzip),
        (&zst, Compression::Zstd),
    ] {
        assert_eq!(Compression::detect(blob), c);
        let dir = tempfile::tempdir().unwrap();
        let stats = unpack_layer(&blob[..], c, dir.path(), &Options::default()).unwrap();
        assert_eq!(stats.diff_id, diff_id, "{c:?}");
        assert_eq!(stats.bytes, tar.len() as u64);
        assert_eq!(stats.entries, 6);
        check_sample(dir.path(), rustix::process::geteuid().is_root());
    }
}

#[test]
fn multi_member_gzip_and_trailing_padding_are_hashed() {
    let mut tar = sample_tar();
    tar.extend_from_slice(&[0u8; 4096]); // extra zero blocks, as some writers add
    let (a, b) = tar.split_at(1000);
    let mut blob = Vec::new();
    for part in [a, b] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(part).unwrap();
        blob.extend(gz.finish().unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let stats = unpack_layer(
        &blob[..],
        Compression::Gzip,
        dir.path(),
        &Options::default(),
    )
    .unwrap();
    assert_eq!(stats.diff_id, Digest::sha256_of(&tar));
    assert_eq!(stats.bytes, tar.len() as u64);
}

#[test]
fn pax_xattrs_times_and_owners() {
    let mut f = RawEntry::new(b'0', "f");
    f.data = b"data".to_vec();
    f.pax
        .push(("SCHILY.xattr.user.comment".into(), b"hi".to_vec()));
    f.pax.push(("mtime".into(), b"1700000000.25".to_vec()));
    f.pax.push(("uid".into(), b"3000000".to_vec()));
    let tar = RawTar::new().entry(f).finish();
    let dir = tempfile::tempdir().unwrap();
    unpack_layer(&tar[..], Compression::None, dir.path(), &Options::default()).unwrap();
    let p = dir.path().join("f");
    let mut buf = [0u8; 8];
    let n = rustix::fs::getxattr(&p, "user.comment", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"hi");
    let m = fs::metadata(&p).unwrap();
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_700_000_000, 250_000_000));
    if rustix::process::geteuid().is_root() {
        assert_eq!(m.uid(), 3_000_000);
    }
}

#[test]
fn read_only_dirs_are_filled_then_locked() {
    let mut d = RawEntry::new(b'5', "ro");
    d.mode = 0o555;
    let tar = RawTar::new().entry(d).file("ro/inside", "x").finish();
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        root: false,
        ..Options::default()
    };
    unpack_layer(&tar[..], Compression::None, dir.path(), &opts).unwrap();
    assert_eq!(fs::read(dir.path().join("ro/inside")).unwrap(), b"x");
    let mode = fs::metadata(dir.path().join("ro"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o555);
}

#[test]
fn root_entry_sets_the_layer_root_mode() {
    let mut d = RawEntry::new(b'5', "./");
    d.mode = 0o700;
    let tar = RawTar::new().entry(d).file("./a", "x").finish();
    let dir = tempfile::tempdir().unwrap();
    unpack_layer(&tar[..], Compression::None, dir.path(), &Options::default()).unwrap();
    let mode = fs::metadata(dir.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn devices_fifos_and_whiteouts_as_root() {
    if !berth_testkit::require_root() {
        return;
    }
    let mut null = RawEntry::new(b'3', "dev/null");
    null.dev = (1, 3);
    null.mode = 0o666;
    let mut fifo = RawEntry::new(b'6', "run/fifo");
    fifo.mode = 0o620;
    let tar = RawTar::new()
        .dir("dev")
        .entry(null)
        .dir("run")
        .entry(fifo)
        .dir("etc")
        .file("etc/.wh.hostname", "")
        .dir("var")
        .file("var/.wh..wh..opq", "")
        .file("var/new", "n")
        .finish();
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        root: true,
        ..Options::default()
    };
    let stats = unpack_layer(&tar[..], Compression::None, dir.path(), &opts).unwrap();
    assert_eq!(stats.skipped, 0);
    let d = dir.path();
    let null = fs::metadata(d.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.permissions().mode() & 0o777, 0o666);
    let fifo = fs::metadata(d.join("run/fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.permissions().mode() & 0o777, 0o620);
    let wh = fs::symlink_metadata(d.join("etc/hostname")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(!d.join("etc/.wh.hostname").exists());
    let mut buf = [0u8; 4];
    let n = rustix::fs::getxattr(d.join("var"), "trusted.overlay.opaque", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"y");
    assert!(!d.join("var/.wh..wh..opq").exists());
    assert_eq!(fs::read(d.join("var/new")).unwrap(), b"n");
}

#[test]
fn device_nodes_are_skipped_without_root() {
    let mut null = RawEntry::new(b'3', "null");
    null.dev = (1, 3);
    let tar = RawTar::new().entry(null).finish();
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        root: false,
        ..Options::default()
    };
    let stats = unpack_layer(&tar[..], Compression::None, dir.path(), &opts).unwrap();
    assert_eq!(stats.skipped, 1);
    assert!(!dir.path().join("null").exists());
}

#[test]
fn setgid_dirs_do_not_leak_their_group_as_root() {
    if !berth_testkit::require_root() {
        return;
    }
    let mut g = RawEntry::new(b'5', "g");
    g.mode = 0o2775;
    g.gid = 50;
    let tar = RawTar::new().entry(g).file("g/f", "x").finish();
    let dir = tempfile::tempdir().unwrap();
    // The layer dir itself is setgid and group 7, too.
    rustix::fs::chown(dir.path(), None, Some(rustix::fs::Gid::from_raw(7))).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o2775)).unwrap();
    let opts = Options {
        root: true,
        ..Options::default()
    };
    unpack_layer(&tar[..], Compression::None, dir.path(), &opts).unwrap();
    let g = fs::metadata(dir.path().join("g")).unwrap();
    assert_eq!((g.gid(), g.permissions().mode() & 0o7777), (50, 0o2775));
    let f = fs::metadata(dir.path().join("g/f")).unwrap();
    assert_eq!((f.uid(), f.gid()), (0, 0));
}
