//! A reader that follows the tar framing of the stream it passes on and
//! refuses oversized extension entries (GNU long names `L`/`K`, PAX `x`/`g`)
//! before the `tar` crate buffers them whole: a gzip of gigabytes of zeros
//! must not become a gigabyte allocation. Go's archive/tar has the same
//! 1 MiB limit.

use std::io::{self, Read};

/// Largest extension entry accepted.
pub(super) const MAX_EXTENSION: u64 = 1 << 20;

enum State {
    /// collecting a 512-byte header
    Header,
    /// inside an entry's data (`data` bytes, then `pad` bytes of padding)
    Data { data: u64, pad: u64 },
    /// collecting old-GNU sparse extension blocks, then the data
    SparseExt { data: u64, pad: u64 },
    /// past the end-of-archive marker: nothing more to check
    Done,
}

pub(super) struct FramingGuard<R> {
    inner: R,
    state: State,
    block: [u8; 512],
    have: usize,
    /// the data of the current PAX `x` entry, to find its `size` record
    pax: Option<Vec<u8>>,
    /// size override for the next entry, from a PAX `size` record
    next_size: Option<u64>,
}

impl<R: Read> FramingGuard<R> {
    pub(super) fn new(inner: R) -> Self {
        Self {
            inner,
            state: State::Header,
            block: [0; 512],
            have: 0,
            pax: None,
            next_size: None,
        }
    }

    pub(super) fn into_inner(self) -> R {
        self.inner
    }

    fn feed(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Done => return Ok(()),
                State::Header | State::SparseExt { .. } => {
                    let n = (512 - self.have).min(bytes.len());
                    self.block[self.have..self.have + n].copy_from_slice(&bytes[..n]);
                    self.have += n;
                    bytes = &bytes[n..];
                    if self.have == 512 {
                        self.have = 0;
                        self.on_block()?;
                    }
                }
                State::Data { data, pad } => {
                    let in_data = (*data).min(bytes.len() as u64) as usize;
                    if let Some(pax) = &mut self.pax {
                        pax.extend_from_slice(&bytes[..in_data]);
                    }
                    *data -= in_data as u64;
                    bytes = &bytes[in_data..];
                    let in_pad = (*pad).min(bytes.len() as u64) as usize;
                    *pad -= in_pad as u64;
                    bytes = &bytes[in_pad..];
                    if *data == 0 && *pad == 0 {
                        self.state = State::Header;
                        self.end_of_entry();
                    }
                }
            }
        }
        Ok(())
    }

    fn on_block(&mut self) -> io::Result<()> {
        let h = &self.block;
        if let State::SparseExt { data, pad } = self.state {
            // byte 504 of an extension block: "another one follows"
            if h[504] == 0 {
                self.state = data_state(data, pad);
            }
            return Ok(());
        }
        if h.iter().all(|b| *b == 0) {
            self.state = State::Done;
            return Ok(());
        }
        let kind = h[156];
        let size = field_size(&h[124..136]);
        let data = if matches!(kind, b'x' | b'g' | b'L' | b'K') {
            if size > MAX_EXTENSION {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "tar extension entry (type {}) of {size} bytes exceeds the {MAX_EXTENSION}-byte limit",
                        kind as char
                    ),
                ));
            }
            size
        } else {
            self.next_size.take().unwrap_or(size)
        };
        let pad = (512 - data % 512) % 512;
        self.pax = (kind == b'x').then(Vec::new);
        self.state = if kind == b'S' && h[482] != 0 {
            State::SparseExt { data, pad }
        } else {
            data_state(data, pad)
        };
        if matches!(self.state, State::Header) {
            self.end_of_entry();
        }
        Ok(())
    }

    /// A PAX entry ended: remember its `size` record for the next entry.
    fn end_of_entry(&mut self) {
        if let Some(pax) = self.pax.take() {
            self.next_size = pax_size(&pax);
        }
    }
}

fn data_state(data: u64, pad: u64) -> State {
    if data == 0 && pad == 0 {
        State::Header
    } else {
        State::Data { data, pad }
    }
}

/// A size field: octal, or base-256 when the top bit of the first byte is set.
fn field_size(f: &[u8]) -> u64 {
    if f[0] & 0x80 != 0 {
        return f[1..].iter().fold(0u64, |acc, b| {
            acc.saturating_mul(256).saturating_add(u64::from(*b))
        });
    }
    let text: Vec<u8> = f
        .iter()
        .copied()
        .filter(|b| *b != 0 && *b != b' ')
        .collect();
    std::str::from_utf8(&text)
        .ok()
        .and_then(|t| u64::from_str_radix(t, 8).ok())
        .unwrap_or(0)
}

/// The `size` record of PAX data (`"<len> key=value\n"` records).
fn pax_size(mut data: &[u8]) -> Option<u64> {
    let mut size = None;
    while let Some(sp) = data.iter().position(|b| *b == b' ') {
        let len: usize = std::str::from_utf8(&data[..sp]).ok()?.parse().ok()?;
        let record = data.get(sp + 1..len)?;
        if let Some(v) = record.strip_prefix(b"size=") {
            size = std::str::from_utf8(v).ok()?.trim_end().parse().ok();
        }
        data = &data[len..];
    }
    size
}

impl<R: Read> Read for FramingGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.feed(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(field_size(b"00000001750\0"), 1000);
        assert_eq!(field_size(b"\0\0\0\0\0\0\0\0\0\0\0\0"), 0);
        let mut b256 = [0u8; 12];
        b256[0] = 0x80;
        b256[11] = 5;
        assert_eq!(field_size(&b256), 5);
        assert_eq!(pax_size(b"12 size=100\n16 path=abcdefg\n"), Some(100));
        assert_eq!(pax_size(b"16 path=abcdefg\n"), None);
    }
}
