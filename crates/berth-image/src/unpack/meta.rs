//! An entry's metadata: header fields and the PAX records that override
//! or extend them (uid, gid, mtime, `SCHILY.xattr.*`).

use std::io::{self, Read};

use rustix::fs::Timespec;
use tar::EntryType;

use super::Error;

/// Metadata of an entry, from its header and PAX records.
pub(super) struct Meta {
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mtime: Timespec,
    pub(super) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(super) fn read_meta<R: Read>(e: &mut tar::Entry<'_, R>, name: &str) -> Result<Meta, Error> {
    let header_err = |source: io::Error| Error::Io {
        entry: name.to_owned(),
        op: "parse tar header",
        source,
    };
    let h = e.header();
    let old = h.as_old();
    let mut meta = Meta {
        mode: numeric(h.mode(), &old.mode).map_err(header_err)?,
        uid: id(numeric(h.uid(), &old.uid).map_err(header_err)?, name)?,
        gid: id(numeric(h.gid(), &old.gid).map_err(header_err)?, name)?,
        mtime: Timespec {
            tv_sec: numeric(h.mtime(), &old.mtime).map_err(header_err)? as i64,
            tv_nsec: 0,
        },
        xattrs: Vec::new(),
    };
    let Some(pax) = e.pax_extensions().map_err(header_err)? else {
        return Ok(meta);
    };
    for ext in pax {
        let ext = ext.map_err(header_err)?;
        let (key, value) = (ext.key_bytes(), ext.value_bytes());
        if let Some(xattr) = key.strip_prefix(b"SCHILY.xattr.") {
            // Overlay's own attributes would let a layer forge whiteouts,
            // opaque dirs or redirects: only `.wh.` entries may do that.
            if !xattr.starts_with(b"trusted.overlay.") && !xattr.starts_with(b"user.overlay.") {
                meta.xattrs.push((xattr.to_vec(), value.to_vec()));
            }
            continue;
        }
        let text = std::str::from_utf8(value).unwrap_or("");
        match key {
            b"uid" => meta.uid = text.parse().map_err(|_| bad(name, "PAX uid"))?,
            b"gid" => meta.gid = text.parse().map_err(|_| bad(name, "PAX gid"))?,
            b"mtime" => meta.mtime = pax_time(text).ok_or_else(|| bad(name, "PAX mtime"))?,
            k if k.starts_with(b"GNU.sparse.") => {
                return Err(Error::Unsupported {
                    entry: name.to_owned(),
                    what: "a PAX (GNU 1.0) sparse file",
                });
            }
            _ => {}
        }
    }
    Ok(meta)
}

/// A numeric header field; an empty one (all NULs or spaces, as some
/// writers leave uid/gid/mtime) reads as 0, as Go's archive/tar reads it.
fn numeric<T: Default>(parsed: io::Result<T>, raw: &[u8]) -> io::Result<T> {
    match parsed {
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(T::default()),
        other => other,
    }
}

pub(super) fn bad(name: &str, what: &'static str) -> Error {
    Error::Unsupported {
        entry: name.to_owned(),
        what,
    }
}

fn id(v: u64, name: &str) -> Result<u32, Error> {
    u32::try_from(v)
        .ok()
        .filter(|v| *v != u32::MAX)
        .ok_or_else(|| bad(name, "a uid/gid above 2^32-2"))
}

/// `SECONDS[.FRACTION]` as PAX writes times.
fn pax_time(text: &str) -> Option<Timespec> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let tv_sec = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let tv_nsec = if digits.is_empty() {
        0
    } else {
        digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32)
    };
    Some(Timespec {
        tv_sec,
        tv_nsec: tv_nsec as _,
    })
}

pub(super) fn link_name<R: Read>(e: &tar::Entry<'_, R>, name: &str) -> Result<Vec<u8>, Error> {
    e.link_name_bytes()
        .map(|l| l.into_owned())
        .ok_or_else(|| bad(name, "a link without a target"))
}

pub(super) fn device<R: Read>(e: &tar::Entry<'_, R>, name: &str) -> Result<(u32, u32), Error> {
    let h = e.header();
    let major = h.device_major().ok().flatten().unwrap_or(0);
    let minor = h.device_minor().ok().flatten().unwrap_or(0);
    if matches!(h.entry_type(), EntryType::Char | EntryType::Block) && h.device_major().is_err() {
        return Err(bad(name, "an unreadable device number"));
    }
    Ok((major, minor))
}
