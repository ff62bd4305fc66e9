//! `--user` resolution through the image's `/etc/passwd` and `/etc/group`,
//! with Docker's rules: `name`, `uid`, `name:group`, `uid:gid` (and mixes);
//! a numeric uid need not exist in passwd; without an explicit group the
//! user's primary group comes from passwd and the supplementary groups are
//! every group listing the user as a member.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Largest uid/gid Docker accepts.
const MAX_ID: u32 = i32::MAX as u32;
/// Passwd/group files larger than this are refused (a hostile image could
/// make the engine read gigabytes).
const MAX_FILE: u64 = 16 << 20;

/// Errors resolving the container's user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// the user is not in the image's /etc/passwd
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoSuchUser(String),
    /// the group is not in the image's /etc/group
    #[error("unable to find group {0}: no matching entries in group file")]
    NoSuchGroup(String),
    /// a numeric id out of range
    #[error("invalid user {0:?}: uids and gids must be in range 0-{MAX_ID}")]
    Range(String),
    /// reading /etc/passwd or /etc/group in the rootfs failed
    #[error("reading {path} in the image")]
    Read {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// The identity the container process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// supplementary groups
    pub additional_gids: Vec<u32>,
    /// `HOME` (from passwd, `/` when the user has no entry)
    pub home: String,
    /// the passwd name, when the user has an entry
    pub name: Option<String>,
}

/// One `/etc/passwd` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// One `/etc/group` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped.
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    records(text)
        .filter_map(|fields| {
            Some(PasswdEntry {
                name: fields.first()?.to_string(),
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
                home: fields.get(5).map_or("/", |h| h).to_string(),
            })
        })
        .collect()
}

/// `name:password:gid:member,member`; malformed lines are skipped.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    records(text)
        .filter_map(|fields| {
            Some(GroupEntry {
                name: fields.first()?.to_string(),
                gid: fields.get(2)?.parse().ok()?,
                members: fields
                    .get(3)
                    .map(|list| {
                        list.split(',')
                            .filter(|m| !m.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split(':').collect())
}

fn numeric(id: &str, whole: &str) -> Result<Option<u32>, Error> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match id.parse::<u64>() {
        Ok(n) if n <= u64::from(MAX_ID) => Ok(Some(n as u32)),
        _ => Err(Error::Range(whole.to_owned())),
    }
}

/// Resolve `spec` (`--user`/image `User`; empty means root) against the
/// image's passwd and group files (`None` when the image has none).
pub fn resolve(spec: &str, passwd: Option<&str>, group: Option<&str>) -> Result<ExecUser, Error> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let users = passwd.map(parse_passwd).unwrap_or_default();
    let groups = group.map(parse_group).unwrap_or_default();

    let mut exec = ExecUser {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: "/".into(),
        name: None,
    };
    let entry = match numeric(user_part, spec)? {
        Some(uid) => {
            exec.uid = uid;
            users.iter().find(|u| u.uid == uid)
        }
        None => Some(
            users
                .iter()
                .find(|u| u.name == user_part)
                .ok_or_else(|| Error::NoSuchUser(user_part.to_owned()))?,
        ),
    };
    if let Some(entry) = entry {
        exec.uid = entry.uid;
        exec.gid = entry.gid;
        exec.home = entry.home.clone();
        exec.name = Some(entry.name.clone());
    }

    match group_part.filter(|g| !g.is_empty()) {
        Some(group_part) => {
            exec.gid = match numeric(group_part, spec)? {
                Some(gid) => gid,
                None => groups
                    .iter()
                    .find(|g| g.name == group_part)
                    .map(|g| g.gid)
                    .ok_or_else(|| Error::NoSuchGroup(group_part.to_owned()))?,
            };
        }
        None => {
            if let Some(name) = &exec.name {
                exec.additional_gids = groups
                    .iter()
                    .filter(|g| g.members.iter().any(|m| m == name))
                    .map(|g| g.gid)
                    .collect();
            }
        }
    }
    Ok(exec)
}

/// Read `etc/passwd` and `etc/group` of the root filesystem at `rootfs`,
/// resolving symlinks inside it (a link to `/etc/shadow` reads the image's,
/// never the host's). Missing files are `None`.
pub fn read_user_files(rootfs: &Path) -> Result<(Option<String>, Option<String>), Error> {
    let root = File::open(rootfs).map_err(|source| Error::Read { path: "/", source })?;
    let passwd = read_in_root(&root, "etc/passwd").map_err(|source| Error::Read {
        path: "/etc/passwd",
        source,
    })?;
    let group = read_in_root(&root, "etc/group").map_err(|source| Error::Read {
        path: "/etc/group",
        source,
    })?;
    Ok((passwd, group))
}

fn read_in_root(root: &File, path: &str) -> std::io::Result<Option<String>> {
    let fd = match crate::openat2::openat2(
        root.as_fd(),
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => return Ok(None),
        Err(errno) => return Err(errno.into()),
    };
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE).read_to_end(&mut bytes)?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/bin/false
www:x:33:33:www-data:/var/www:/bin/false
alice:x:1000:1000::/home/alice:/bin/sh
broken line
";
    const GROUP: &str = "\
root:x:0:
wheel:x:10:root,alice
www:x:33:
alice:x:1000:
audio:x:29:alice
";

    fn user(uid: u32, gid: u32, sgids: &[u32], home: &str, name: Option<&str>) -> ExecUser {
        ExecUser {
            uid,
            gid,
            additional_gids: sgids.to_vec(),
            home: home.into(),
            name: name.map(str::to_owned),
        }
    }

    #[test]
    fn resolves_like_docker() {
        let cases: &[(&str, ExecUser)] = &[
            ("", user(0, 0, &[10], "/root", Some("root"))),
            ("root", user(0, 0, &[10], "/root", Some("root"))),
            ("0", user(0, 0, &[10], "/root", Some("root"))),
            ("www", user(33, 33, &[], "/var/www", Some("www"))),
            (
                "alice",
                user(1000, 1000, &[10, 29], "/home/alice", Some("alice")),
            ),
            (
                "1000",
                user(1000, 1000, &[10, 29], "/home/alice", Some("alice")),
            ),
            (
                "alice:www",
                user(1000, 33, &[], "/home/alice", Some("alice")),
            ),
            (
                "alice:4242",
                user(1000, 4242, &[], "/home/alice", Some("alice")),
            ),
            ("4242", user(4242, 0, &[], "/", None)),
            ("4242:33", user(4242, 33, &[], "/", None)),
            ("4242:wheel", user(4242, 10, &[], "/", None)),
            ("daemon:", user(1, 1, &[], "/usr/sbin", Some("daemon"))),
        ];
        for (spec, expected) in cases {
            let got = resolve(spec, Some(PASSWD), Some(GROUP)).expect(spec);
            assert_eq!(&got, expected, "--user {spec:?}");
        }
    }

    #[test]
    fn unknown_names_are_errors_and_numbers_are_not() {
        let err = resolve("nobody", Some(PASSWD), Some(GROUP)).expect_err("unknown user");
        assert_eq!(
            err.to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        let err = resolve("alice:staff", Some(PASSWD), Some(GROUP)).expect_err("unknown group");
        assert_eq!(
            err.to_string(),
            "unable to find group staff: no matching entries in group file"
        );
        assert!(matches!(
            resolve("99999999999", None, None),
            Err(Error::Range(_))
        ));
        assert!(matches!(
            resolve("bob", None, None),
            Err(Error::NoSuchUser(_))
        ));
        assert_eq!(
            resolve("", None, None).expect("root without passwd"),
            user(0, 0, &[], "/", None)
        );
        assert_eq!(
            resolve("7:8", None, None).expect("ids without files"),
            user(7, 8, &[], "/", None)
        );
    }

    #[test]
    fn reads_files_inside_the_root_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).expect("mkdir etc");
        // An absolute symlink must resolve inside the rootfs, not on the host.
        std::os::unix::fs::symlink("/etc/real-passwd", etc.join("passwd")).expect("symlink");
        std::fs::write(etc.join("real-passwd"), "x:x:5:6::/x:/bin/sh\n").expect("write");
        let (passwd, group) = read_user_files(dir.path()).expect("read");
        assert_eq!(passwd.as_deref(), Some("x:x:5:6::/x:/bin/sh\n"));
        assert_eq!(group, None);
    }
}
