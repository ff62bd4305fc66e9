//! Reading and writing cgroup interface files, with errors that name the file
//! and the value.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Write `value` to `dir/file` in one `write(2)`, as the kernel expects.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    let res = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|source| Error::Write {
        file: file.to_owned(),
        value: value.to_owned(),
        path,
        source,
    })
}

/// Read `dir/file` as a string.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|source| Error::Read {
        file: file.to_owned(),
        path,
        source,
    })
}

/// Read `dir/file`, or `None` when it does not exist.
pub(crate) fn read_optional(dir: &Path, file: &str) -> Result<Option<String>> {
    match read(dir, file) {
        Ok(s) => Ok(Some(s)),
        Err(Error::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `dir/file` exists.
pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

/// Parse a single unsigned number; `max` (v2) reads as `u64::MAX`.
pub(crate) fn parse_u64(file: &str, content: &str) -> Result<u64> {
    let t = content.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse::<u64>().map_err(|_| Error::Parse {
        file: file.to_owned(),
        content: t.to_owned(),
    })
}

/// Read a single number; `None` when the file does not exist.
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<Option<u64>> {
    match read_optional(dir, file)? {
        Some(s) => parse_u64(file, &s).map(Some),
        None => Ok(None),
    }
}

/// Parse `key value` lines (memory.stat, cpu.stat, memory.events, ...).
/// Lines that do not have exactly a key and a number are skipped.
pub(crate) fn parse_flat_keyed(content: &str) -> Vec<(String, u64)> {
    content
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse::<u64>().ok()?;
            it.next().is_none().then(|| (k.to_owned(), v))
        })
        .collect()
}

/// The value of `key` in a flat-keyed file's content.
pub(crate) fn keyed_value(content: &str, key: &str) -> Option<u64> {
    parse_flat_keyed(content)
        .into_iter()
        .find_map(|(k, v)| (k == key).then_some(v))
}

/// Parse the pids of a `cgroup.procs` file.
pub(crate) fn parse_pids(file: &str, content: &str) -> Result<Vec<i32>> {
    content
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse::<i32>().map_err(|_| Error::Parse {
                file: file.to_owned(),
                content: l.to_owned(),
            })
        })
        .collect()
}

/// The pids of `dir` and every cgroup below it.
pub(crate) fn pids_recursive(dir: &Path) -> Result<Vec<i32>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        match read_optional(&d, "cgroup.procs")? {
            Some(c) => out.extend(parse_pids("cgroup.procs", &c)?),
            None if d == dir => {
                return Err(Error::Read {
                    file: "cgroup.procs".into(),
                    path: d.join("cgroup.procs"),
                    source: io::Error::from(io::ErrorKind::NotFound),
                })
            }
            None => continue,
        }
        stack.extend(subdirs(&d)?);
    }
    Ok(out)
}

/// The child cgroups of `dir` (an absent dir has none).
pub(crate) fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                what: "list cgroup",
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for entry in rd.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Write `pid` to `dir/cgroup.procs`.
pub(crate) fn add_pid(dir: &Path, pid: i32) -> Result<()> {
    write(dir, "cgroup.procs", &pid.to_string())
}

/// Create `dir` and its missing parents; return the dirs that were created,
/// outermost first.
pub(crate) fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    missing.reverse();
    let mut created = Vec::new();
    for d in missing {
        match std::fs::create_dir(&d) {
            Ok(()) => created.push(d),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(Error::Io {
                    what: "create cgroup",
                    path: d,
                    source,
                })
            }
        }
    }
    Ok(created)
}

/// Remove the cgroup `dir` and every cgroup below it, deepest first. A
/// missing dir is fine; EBUSY (the kernel still tearing down exited tasks) is
/// retried for about a second.
pub(crate) fn remove_tree(dir: &Path) -> Result<()> {
    // The usual cgroup is a leaf whose processes are gone: one rmdir, no
    // listing. Otherwise (child cgroups, EBUSY while tasks exit) walk it.
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    for child in subdirs(dir)? {
        remove_tree(&child)?;
    }
    let mut delay = std::time::Duration::from_millis(1);
    for attempt in 0.. {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 12 => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(std::time::Duration::from_millis(200));
            }
            Err(source) => {
                return Err(Error::Io {
                    what: "remove cgroup",
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Remove `dir` if it is an empty cgroup; anything else (still in use,
/// missing) is left alone. For parents we created that others may share.
pub(crate) fn remove_if_unused(dir: &Path) {
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_skips_nested_lines() {
        let c = "usage_usec 10\nuser_usec 7\nbad line here\nsystem_usec 3\n";
        assert_eq!(keyed_value(c, "user_usec"), Some(7));
        assert_eq!(parse_flat_keyed(c).len(), 3);
    }

    #[test]
    fn max_is_u64_max() {
        assert_eq!(parse_u64("pids.max", "max\n").ok(), Some(u64::MAX));
        assert_eq!(parse_u64("pids.max", "12\n").ok(), Some(12));
        assert!(parse_u64("pids.max", "x").is_err());
    }

    #[test]
    fn pids_parse() {
        assert_eq!(
            parse_pids("cgroup.procs", "1\n22\n\n").ok(),
            Some(vec![1, 22])
        );
    }

    #[test]
    fn write_error_names_file_and_value() {
        let dir = Path::new("/nonexistent-berth-dir");
        let e = write(dir, "memory.max", "10").err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("cgroup memory.max: write 10"));
    }
}
