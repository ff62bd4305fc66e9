//! An on-disk cache of compiled seccomp programs, keyed by the exact
//! `linux.seccomp` JSON (plus keel, libseccomp and kernel versions).
//!
//! Compiling Docker's default profile with libseccomp costs milliseconds;
//! reading a cached program costs microseconds. The file name is a hash of
//! the key, but a hit requires the stored key to match byte for byte, so a
//! hash collision can only cause a miss, never load someone else's filter.
//! Cache errors are never fatal: the filter is compiled instead.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;

use super::{compile_seccomp, Error, SeccompFilter};

const MAGIC: &[u8; 8] = b"KEELBPF1";
/// Bump when the compiled program changes for the same input (e.g. the
/// ENOSYS prologue), so stale entries become misses.
const PROGRAM_FORMAT: u32 = 3;

/// Like [`compile_seccomp`], reusing a program compiled earlier for the same
/// `linux.seccomp` from `cache_dir` (created if missing, e.g.
/// `<root>/seccomp-cache`), and storing new ones there.
pub fn compile_seccomp_cached(
    seccomp: &LinuxSeccomp,
    cache_dir: &Path,
) -> Result<SeccompFilter, Error> {
    let key = cache_key(seccomp);
    let path = entry_path(cache_dir, &key);
    if let Some(filter) = std::fs::read(&path).ok().and_then(|b| decode(&b, &key)) {
        return Ok(filter);
    }
    let filter = compile_seccomp(seccomp)?;
    if let Err(e) = store(cache_dir, &path, &key, &filter) {
        crate::log::debug(|| format!("seccomp cache: not storing {}: {e}", path.display()));
    }
    Ok(filter)
}

fn cache_key(seccomp: &LinuxSeccomp) -> Vec<u8> {
    let mut key = format!(
        "keel {} program {PROGRAM_FORMAT} libseccomp {} arch {} kernel {}\n",
        env!("CARGO_PKG_VERSION"),
        libseccomp_version(),
        std::env::consts::ARCH,
        rustix::system::uname().release().to_string_lossy(),
    )
    .into_bytes();
    // Serialising a parsed spec cannot fail (no maps with non-string keys).
    key.extend(serde_json::to_vec(seccomp).unwrap_or_default());
    key
}

fn libseccomp_version() -> String {
    libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default()
}

fn entry_path(dir: &Path, key: &[u8]) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    dir.join(format!("{:016x}.bpf", h.finish()))
}

fn encode(key: &[u8], filter: &SeccompFilter) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + key.len() + filter.program.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&filter.flags.to_le_bytes());
    out.extend_from_slice(&(key.len() as u64).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&filter.program);
    out
}

fn decode(bytes: &[u8], key: &[u8]) -> Option<SeccompFilter> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let flags = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
    let key_len = usize::try_from(u64::from_le_bytes(rest.get(4..12)?.try_into().ok()?)).ok()?;
    let stored_key = rest.get(12..12usize.checked_add(key_len)?)?;
    if stored_key != key {
        return None;
    }
    let program = rest.get(12 + key_len..)?.to_vec();
    if program.is_empty() || program.len() % 8 != 0 {
        return None;
    }
    Some(SeccompFilter { program, flags })
}

/// Write to a temporary file and rename, so readers see whole entries only.
fn store(dir: &Path, path: &Path, key: &[u8], filter: &SeccompFilter) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let write = || {
        std::fs::File::create(&tmp)?.write_all(&encode(key, filter))?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        // The caller only logs the first error; don't leave a partial file.
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn profile(errno: u32) -> LinuxSeccomp {
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}]
        }))
        .unwrap()
    }

    #[test]
    fn roundtrip_and_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let a = profile(1);
        let first = compile_seccomp_cached(&a, dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let second = compile_seccomp_cached(&a, dir.path()).unwrap();
        assert_eq!(first, second);
        assert_eq!(first, compile_seccomp(&a).unwrap());
        // Another profile gets its own entry and its own program.
        let b = compile_seccomp_cached(&profile(13), dir.path()).unwrap();
        assert_ne!(b.program, first.program);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn corrupt_or_colliding_entries_are_misses() {
        let key = b"key".to_vec();
        let f = SeccompFilter {
            program: vec![0; 16],
            flags: 8,
        };
        let bytes = encode(&key, &f);
        assert_eq!(decode(&bytes, &key), Some(f));
        assert_eq!(decode(&bytes, b"other"), None);
        assert_eq!(decode(&bytes[..bytes.len() - 3], &key), None);
        assert_eq!(decode(b"garbage", &key), None);
    }
}
