//! Mount options of the spec (fstab words) sorted into what the kernel takes:
//! mount attributes (per mount and recursive), propagation, idmapping, and
//! the filesystem's own `key=value` data.

use rustix::mount::MountAttrFlags;

use super::sys::Attrs;

const RDONLY: u64 = MountAttrFlags::MOUNT_ATTR_RDONLY.bits() as u64;
const NOSUID: u64 = MountAttrFlags::MOUNT_ATTR_NOSUID.bits() as u64;
const NODEV: u64 = MountAttrFlags::MOUNT_ATTR_NODEV.bits() as u64;
const NOEXEC: u64 = MountAttrFlags::MOUNT_ATTR_NOEXEC.bits() as u64;
const ATIME_MASK: u64 = MountAttrFlags::MOUNT_ATTR__ATIME.bits() as u64;
const RELATIME: u64 = MountAttrFlags::MOUNT_ATTR_RELATIME.bits() as u64;
const NOATIME: u64 = MountAttrFlags::MOUNT_ATTR_NOATIME.bits() as u64;
const STRICTATIME: u64 = MountAttrFlags::MOUNT_ATTR_STRICTATIME.bits() as u64;
const NODIRATIME: u64 = MountAttrFlags::MOUNT_ATTR_NODIRATIME.bits() as u64;
const NOSYMFOLLOW: u64 = MountAttrFlags::MOUNT_ATTR_NOSYMFOLLOW.bits() as u64;

/// Propagation requested by an option, as `MS_*` plus whether recursive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Propagation {
    pub kind: u64,
    pub recursive: bool,
}

/// One spec mount's options, sorted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    /// `bind` or `rbind` was given
    pub bind: bool,
    /// `rbind`: submounts come along
    pub recursive_bind: bool,
    /// attributes of the mount itself
    pub attrs: Attrs,
    /// attributes applied to the mount and every submount (`rro`, `rnosuid`…)
    pub rattrs: Attrs,
    /// propagation changes, in order
    pub propagation: Vec<Propagation>,
    /// `idmap` (false) or `ridmap` (true)
    pub idmap: Option<bool>,
    /// superblock flags and filesystem data (`mode=755`, `newinstance`, `ro`…)
    pub data: Vec<String>,
    /// runc's `tmpcopyup`: the new tmpfs starts as a copy of what it covers
    pub tmpcopyup: bool,
}

/// Set or clear one attribute bit.
fn flag(a: &mut Attrs, bit: u64, on: bool) {
    if on {
        a.set |= bit;
        a.clr &= !bit;
    } else {
        a.clr |= bit;
        a.set &= !bit;
    }
}

/// Choose an atime mode (the kernel treats atime as one field).
fn atime(a: &mut Attrs, mode: u64) {
    a.set = (a.set & !ATIME_MASK) | mode;
    a.clr |= ATIME_MASK;
}

/// Apply a (non-`r`-prefixed) attribute word to `a`; false when not one.
fn attr_word(a: &mut Attrs, word: &str) -> bool {
    match word {
        "ro" => flag(a, RDONLY, true),
        "rw" => flag(a, RDONLY, false),
        "nosuid" => flag(a, NOSUID, true),
        "suid" => flag(a, NOSUID, false),
        "nodev" => flag(a, NODEV, true),
        "dev" => flag(a, NODEV, false),
        "noexec" => flag(a, NOEXEC, true),
        "exec" => flag(a, NOEXEC, false),
        "nodiratime" => flag(a, NODIRATIME, true),
        "diratime" => flag(a, NODIRATIME, false),
        "nosymfollow" => flag(a, NOSYMFOLLOW, true),
        "symfollow" => flag(a, NOSYMFOLLOW, false),
        "noatime" => atime(a, NOATIME),
        "strictatime" => atime(a, STRICTATIME),
        "relatime" | "atime" | "norelatime" | "nostrictatime" => atime(a, RELATIME),
        _ => return false,
    }
    true
}

/// The propagation option `word` names, if any.
fn propagation(word: &str) -> Option<Propagation> {
    let (recursive, base) = match word.strip_prefix('r') {
        Some(b @ ("shared" | "slave" | "private" | "unbindable")) => (true, b),
        _ => (false, word),
    };
    let kind = match base {
        "shared" => libc::MS_SHARED,
        "slave" => libc::MS_SLAVE,
        "private" => libc::MS_PRIVATE,
        "unbindable" => libc::MS_UNBINDABLE,
        _ => return None,
    };
    Some(Propagation { kind, recursive })
}

impl Options {
    /// Sort `words` (a spec mount's `options`).
    pub(crate) fn parse<S: AsRef<str>>(words: &[S]) -> Self {
        let mut o = Options::default();
        for w in words.iter().map(AsRef::as_ref) {
            match w {
                "bind" => o.bind = true,
                "rbind" => {
                    o.bind = true;
                    o.recursive_bind = true;
                }
                "idmap" => o.idmap = Some(false),
                "ridmap" => o.idmap = Some(true),
                "tmpcopyup" => o.tmpcopyup = true,
                "defaults" | "remount" | "loud" | "silent" => {}
                // superblock flags go to the filesystem as fsconfig flags
                "sync" | "async" | "dirsync" | "mand" | "nomand" | "lazytime" | "nolazytime"
                | "iversion" | "noiversion" => o.data.push(w.to_owned()),
                _ => {
                    if attr_word(&mut o.attrs, w) {
                        continue;
                    }
                    if let Some(p) = propagation(w) {
                        o.propagation.push(p);
                        continue;
                    }
                    if let Some(rest) = w.strip_prefix('r') {
                        if attr_word(&mut o.rattrs, rest) {
                            continue;
                        }
                    }
                    o.data.push(w.to_owned());
                }
            }
        }
        o
    }

    /// Attribute bits for a brand-new filesystem mount (`fsmount`): its own
    /// and the recursive ones (a new mount has no submounts).
    pub(crate) fn fsmount_attrs(&self) -> u64 {
        let mut a = self.attrs;
        for bit in [RDONLY, NOSUID, NODEV, NOEXEC, NODIRATIME, NOSYMFOLLOW] {
            if self.rattrs.set & bit != 0 {
                flag(&mut a, bit, true);
            } else if self.rattrs.clr & bit != 0 {
                flag(&mut a, bit, false);
            }
        }
        if self.rattrs.clr & ATIME_MASK != 0 {
            atime(&mut a, self.rattrs.set & ATIME_MASK);
        }
        a.set
    }

    /// Whether the mount ends read-only (`ro` or `rro`).
    pub(crate) fn readonly(&self) -> bool {
        (self.attrs.set | self.rattrs.set) & RDONLY != 0
    }

    /// The filesystem data, with `ro` added as a superblock flag when the
    /// mount is read-only (what `mount(2)` with `MS_RDONLY` does).
    pub(crate) fn fs_data(&self) -> Vec<String> {
        let mut d = self.data.clone();
        if self.readonly() {
            d.push("ro".to_owned());
        }
        d
    }
}

/// `MOUNT_ATTR_RDONLY`, for callers that only need read-only.
pub(crate) fn readonly_attrs() -> Attrs {
    Attrs {
        set: RDONLY,
        clr: 0,
        propagation: 0,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_config_tmpfs_options_sort() {
        let o = Options::parse(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.attrs.set, NOSUID | STRICTATIME);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        assert!(!o.bind && !o.readonly());
    }

    #[test]
    fn recursive_attributes_and_propagation() {
        let o = Options::parse(&[
            "rbind", "rro", "rnosuid", "rnoatime", "rslave", "private", "nodev",
        ]);
        assert!(o.bind && o.recursive_bind);
        assert_eq!(o.rattrs.set, RDONLY | NOSUID | NOATIME);
        assert!(o.rattrs.clr & ATIME_MASK != 0);
        assert_eq!(o.attrs.set, NODEV);
        assert_eq!(
            o.propagation,
            vec![
                Propagation {
                    kind: libc::MS_SLAVE,
                    recursive: true
                },
                Propagation {
                    kind: libc::MS_PRIVATE,
                    recursive: false
                }
            ]
        );
        assert!(o.readonly());
        assert_eq!(o.fsmount_attrs(), RDONLY | NOSUID | NODEV | NOATIME);
    }

    #[test]
    fn later_words_win_and_unknown_words_are_data() {
        let o = Options::parse(&["ro", "rw", "rrw", "ridmap", "newinstance", "gid=5", "sync"]);
        assert!(!o.readonly());
        assert_eq!(o.attrs.clr, RDONLY);
        assert_eq!(o.rattrs.clr, RDONLY);
        assert_eq!(o.idmap, Some(true));
        assert_eq!(o.data, vec!["newinstance", "gid=5", "sync"]);
        assert_eq!(Options::parse(&["ro"]).fs_data(), vec!["ro"]);
    }
}
