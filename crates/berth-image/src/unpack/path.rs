//! Lexical cleaning of tar entry names and link targets, before anything
//! touches the filesystem. The rules follow Docker's: a leading `/` is
//! stripped, `..` inside an absolute name stops at the root, and a relative
//! name (or link target) whose `..` climbs above the layer root is refused.

/// A cleaned path inside the layer: its components, none of them empty, `.`
/// or `..`. No components means the layer root itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Clean(Vec<Vec<u8>>);

/// The name (or target) climbs above the layer root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Escapes;

impl Clean {
    /// Clean an entry name. Absolute names are taken relative to the layer
    /// root (`/../x` is `x`, as `filepath.Clean` makes it); a relative name
    /// whose `..` leaves the root escapes.
    pub(super) fn entry_name(raw: &[u8]) -> Result<Self, Escapes> {
        let rooted = raw.first() == Some(&b'/');
        let mut out = Self(Vec::new());
        out.push_all(raw, rooted)?;
        Ok(out)
    }

    /// Clean a hard link target: the leading `/` is stripped, and any `..`
    /// that leaves the root escapes (Docker joins it to the layer dir).
    pub(super) fn link_target(raw: &[u8]) -> Result<Self, Escapes> {
        let mut out = Self(Vec::new());
        out.push_all(raw, false)?;
        Ok(out)
    }

    /// Check a symlink target as Docker does: joined (even when absolute) to
    /// the link's own directory, it must stay inside the layer.
    pub(super) fn check_symlink(&self, target: &[u8]) -> Result<(), Escapes> {
        let mut dir = Self(self.0[..self.0.len().saturating_sub(1)].to_vec());
        dir.push_all(target, false)
    }

    fn push_all(&mut self, raw: &[u8], rooted: bool) -> Result<(), Escapes> {
        for part in raw.split(|b| *b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    if self.0.pop().is_none() && !rooted {
                        return Err(Escapes);
                    }
                }
                name => self.0.push(name.to_vec()),
            }
        }
        Ok(())
    }

    /// The first component (empty for the root).
    pub(super) fn first(&self) -> &[u8] {
        self.0.first().map_or(&[], Vec::as_slice)
    }

    /// Whether this is the layer root.
    pub(super) fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The last component (empty for the root).
    pub(super) fn name(&self) -> &[u8] {
        self.0.last().map_or(&[], Vec::as_slice)
    }

    /// The parent directory's path relative to the root, `/`-joined (empty
    /// for entries directly under the root).
    pub(super) fn parent(&self) -> Vec<u8> {
        join(&self.0[..self.0.len().saturating_sub(1)])
    }

    /// The whole path, `/`-joined (empty for the root).
    pub(super) fn joined(&self) -> Vec<u8> {
        join(&self.0)
    }

    /// The parent's components, for creating missing directories one by one.
    pub(super) fn parent_components(&self) -> &[Vec<u8>] {
        &self.0[..self.0.len().saturating_sub(1)]
    }
}

fn join(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(p);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn s(c: &Clean) -> String {
        String::from_utf8_lossy(&c.joined()).into_owned()
    }

    #[test]
    fn entry_names_are_cleaned_like_docker() {
        assert_eq!(s(&Clean::entry_name(b"./a/b/").unwrap()), "a/b");
        assert_eq!(s(&Clean::entry_name(b"/etc/passwd").unwrap()), "etc/passwd");
        assert_eq!(s(&Clean::entry_name(b"/../../etc").unwrap()), "etc");
        assert_eq!(s(&Clean::entry_name(b"a/../b").unwrap()), "b");
        assert!(Clean::entry_name(b"./").unwrap().is_root());
        assert_eq!(Clean::entry_name(b"../x"), Err(Escapes));
        assert_eq!(Clean::entry_name(b"a/../../x"), Err(Escapes));
    }

    #[test]
    fn link_targets() {
        assert_eq!(s(&Clean::link_target(b"/bin/sh").unwrap()), "bin/sh");
        assert_eq!(Clean::link_target(b"/../etc/passwd"), Err(Escapes));
        let link = Clean::entry_name(b"usr/bin/sh").unwrap();
        assert!(link.check_symlink(b"../../bin/busybox").is_ok());
        assert!(link.check_symlink(b"/etc/passwd").is_ok());
        assert_eq!(link.check_symlink(b"../../../etc"), Err(Escapes));
        assert_eq!(link.parent(), b"usr/bin");
        assert_eq!(link.name(), b"sh");
    }
}
