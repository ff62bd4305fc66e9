//! Raw tar builders for layer tests, including the hostile entries that
//! well-behaved tar writers refuse to produce (`../` names, absolute names,
//! links out of the tree, bad whiteouts). Headers are ustar with PAX records
//! when asked for; nothing here validates anything on purpose.

/// A tar archive built entry by entry.
#[derive(Debug, Default, Clone)]
pub struct RawTar {
    out: Vec<u8>,
}

/// One raw entry: any name, any type flag, any link target.
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub name: Vec<u8>,
    /// ustar type flag: b'0' file, b'1' hard link, b'2' symlink, b'3' char,
    /// b'4' block, b'5' dir, b'6' fifo
    pub kind: u8,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    pub link: Vec<u8>,
    pub data: Vec<u8>,
    pub dev: (u32, u32),
    /// PAX records (`key`, `value`) written in an `x` header before the entry
    pub pax: Vec<(String, Vec<u8>)>,
}

impl RawEntry {
    /// An entry with defaults: mode 0644 (0755 for dirs), root-owned, mtime 1_600_000_000.
    pub fn new(kind: u8, name: impl AsRef<[u8]>) -> Self {
        Self {
            name: name.as_ref().to_vec(),
            kind,
            mode: if kind == b'5' { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            link: Vec::new(),
            data: Vec::new(),
            dev: (0, 0),
            pax: Vec::new(),
        }
    }
}

impl RawTar {
    pub fn new() -> Self {
        Self::default()
    }

    /// A regular file.
    pub fn file(self, name: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> Self {
        let mut e = RawEntry::new(b'0', name);
        e.data = data.as_ref().to_vec();
        self.entry(e)
    }

    /// A directory.
    pub fn dir(self, name: impl AsRef<[u8]>) -> Self {
        self.entry(RawEntry::new(b'5', name))
    }

    /// A symlink `name -> target`.
    pub fn symlink(self, name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Self {
        let mut e = RawEntry::new(b'2', name);
        e.link = target.as_ref().to_vec();
        e.mode = 0o777;
        self.entry(e)
    }

    /// A hard link `name` to the earlier entry `target`.
    pub fn hardlink(self, name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Self {
        let mut e = RawEntry::new(b'1', name);
        e.link = target.as_ref().to_vec();
        self.entry(e)
    }

    /// Any entry. Names or targets longer than ustar allows go into PAX
    /// `path`/`linkpath` records.
    pub fn entry(mut self, mut e: RawEntry) -> Self {
        if e.name.len() > 100 {
            e.pax.push(("path".into(), e.name.clone()));
            e.name.truncate(100);
        }
        if e.link.len() > 100 {
            e.pax.push(("linkpath".into(), e.link.clone()));
            e.link.truncate(100);
        }
        if !e.pax.is_empty() {
            let mut body = Vec::new();
            for (k, v) in &e.pax {
                body.extend_from_slice(&pax_record(k, v));
            }
            let mut h = RawEntry::new(b'x', b"PaxHeaders/entry");
            h.data = body;
            self.push(&h);
        }
        self.push(&e);
        self
    }

    fn push(&mut self, e: &RawEntry) {
        self.out.extend_from_slice(&header(e));
        self.out.extend_from_slice(&e.data);
        let pad = (512 - e.data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }

    /// The archive bytes, with the two zero blocks that end a tar.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }
}

/// A PAX record `"<len> key=value\n"` where len counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // space, '=', '\n'
    let mut len = rest + 1;
    while len.to_string().len() + rest != len {
        len += 1;
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

fn octal(field: &mut [u8], value: u64) {
    let s = format!("{:0width$o}", value, width = field.len() - 1);
    field[..s.len()].copy_from_slice(s.as_bytes());
}

fn header(e: &RawEntry) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = e.name.len().min(100);
    h[..n].copy_from_slice(&e.name[..n]);
    octal(&mut h[100..108], u64::from(e.mode));
    octal(&mut h[108..116], u64::from(e.uid));
    octal(&mut h[116..124], u64::from(e.gid));
    octal(&mut h[124..136], e.data.len() as u64);
    octal(&mut h[136..148], e.mtime);
    h[156] = e.kind;
    let l = e.link.len().min(100);
    h[157..157 + l].copy_from_slice(&e.link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], u64::from(e.dev.0));
    octal(&mut h[337..345], u64::from(e.dev.1));
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    octal(&mut h[148..155], sum);
    h[154] = 0;
    h[155] = b' ';
    h
}

/// A complete archive holding one old-style GNU sparse file (type `S`) of
/// apparent size `real_size`, with data `chunks` at the given offsets (at
/// most four, in order).
pub fn gnu_sparse(name: &str, real_size: u64, chunks: &[(u64, &[u8])]) -> Vec<u8> {
    assert!(
        chunks.len() <= 4,
        "only the in-header sparse map is written"
    );
    let data: Vec<u8> = chunks.iter().flat_map(|(_, d)| d.iter().copied()).collect();
    let mut e = RawEntry::new(b'S', name);
    e.data = data;
    let mut h = header(&e);
    h[257..265].copy_from_slice(b"ustar  \0");
    h[329..345].fill(0);
    for (i, (off, d)) in chunks.iter().enumerate() {
        let at = 386 + i * 24;
        octal(&mut h[at..at + 12], *off);
        octal(&mut h[at + 12..at + 24], d.len() as u64);
    }
    octal(&mut h[483..495], real_size);
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    octal(&mut h[148..155], sum);
    h[154] = 0;
    let mut out = h.to_vec();
    out.extend_from_slice(&e.data);
    let pad = (512 - e.data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad + 1024));
    out
}
