//! `linux.intelRdt`: the container's resctrl group (Intel RDT, AMD QoS).
//!
//! The group is a directory of the resctrl filesystem: `closID`, or the
//! container id when no closID is given. Following runtime-spec 1.2:
//! * a schema in the config (`l3CacheSchema`, `memBwSchema`, `schemata`) and
//!   no such group: keel makes it and writes the schema, L3/MB lines first and
//!   `schemata` last; it removes the group on delete;
//! * a schema and an existing group: the group's schemata must already say
//!   the same (compared per resource and cache id), else create fails;
//! * a closID without a schema names a group the administrator prepared: it
//!   must exist;
//! * `enableMonitoring` (or the older `enableCMT`/`enableMBM`) adds a
//!   monitoring group `mon_groups/<container id>` inside it.
//!
//! Every container process (init, then each `exec`) is written to the
//! group's `tasks` (and the monitoring group's). Nothing here touches resctrl
//! unless the config has `intelRdt`.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxIntelRdt;
use serde::{Deserialize, Serialize};

/// Errors setting up or joining the resctrl group.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// no resctrl in the runtime's mount namespace
    #[error("linux.intelRdt is set but no resctrl filesystem is mounted (mount -t resctrl resctrl /sys/fs/resctrl)")]
    NotMounted,
    /// a closID that is not a plain directory name
    #[error("linux.intelRdt.closID {0:?} is not a valid resctrl group name")]
    BadClosId(String),
    /// memBwSchema must be one `MB:` line
    #[error("linux.intelRdt.memBwSchema {0:?} must be one line starting with \"MB:\"")]
    BadMemBw(String),
    /// closID without a schema names a group that must exist
    #[error("linux.intelRdt.closID {0:?}: no such resctrl group (without a schema, closID must name an existing group)")]
    Missing(String),
    /// the existing group's schemata differs from the config
    #[error("linux.intelRdt: resctrl group {} has {have:?} where the config asks for {want:?}", dir.display())]
    Mismatch {
        dir: PathBuf,
        want: String,
        have: String,
    },
    /// `update` of a group keel did not make
    #[error("linux.intelRdt: resctrl group {} was prepared outside keel (closID); keel does not change its schemata", .0.display())]
    Shared(PathBuf),
    /// `update` of a container without intelRdt
    #[error("container has no linux.intelRdt: --l3-cache-schema/--mem-bw-schema need one")]
    NoGroup,
    #[error("linux.intelRdt: cannot {what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// The container's resctrl group, kept in state.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// the control group directory
    pub dir: PathBuf,
    /// keel made `dir` (and removes it on delete)
    pub created: bool,
    /// the monitoring group keel made inside `dir`
    pub monitor: Option<PathBuf>,
}

/// Names the resctrl root uses for its own files and directories.
const RESERVED: &[&str] = &[
    "info",
    "mon_groups",
    "mon_data",
    "tasks",
    "cpus",
    "cpus_list",
    "schemata",
    "mode",
    "size",
];

/// Where resctrl is mounted in this mount namespace (from mountinfo).
pub fn mount_point() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mount_point_in(&info)
}

fn mount_point_in(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        if post.split_whitespace().next()? != "resctrl" {
            return None;
        }
        let point = pre.split_whitespace().nth(4)?;
        Some(PathBuf::from(point.replace("\\040", " ")))
    })
}

/// The schemata lines the config asks for, in the order they are written.
pub fn wanted_lines(rdt: &LinuxIntelRdt) -> Result<Vec<String>, Error> {
    let mut lines = Vec::new();
    let mem_bw = rdt.mem_bw_schema().as_deref().filter(|s| !s.is_empty());
    if let Some(mb) = mem_bw {
        if !mb.trim_start().starts_with("MB:") || mb.trim().contains('\n') {
            return Err(Error::BadMemBw(mb.to_owned()));
        }
    }
    if let Some(l3) = rdt.l3_cache_schema().as_deref() {
        lines.extend(
            l3.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                // memBwSchema wins over an MB: line inside l3CacheSchema
                .filter(|l| mem_bw.is_none() || !l.starts_with("MB:"))
                .map(str::to_owned),
        );
    }
    if let Some(mb) = mem_bw {
        lines.push(mb.trim().to_owned());
    }
    for s in rdt.schemata().iter().flatten() {
        lines.extend(
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    Ok(lines)
}

/// A schemata line as resource → (domain id → value), for comparing what
/// the kernel prints (aligned, zero-padded masks) with what a config says.
fn parse_line(line: &str) -> Option<(String, BTreeMap<String, String>)> {
    let (res, domains) = line.trim().split_once(':')?;
    let mut map = BTreeMap::new();
    for d in domains.split(';').map(str::trim).filter(|d| !d.is_empty()) {
        let (id, v) = d.split_once('=')?;
        let v = v.trim().trim_start_matches('0').to_ascii_lowercase();
        map.insert(id.trim().to_owned(), v);
    }
    Some((res.trim().to_ascii_uppercase(), map))
}

/// Does the group's current `schemata` text already have every wanted line?
fn matches(current: &str, wanted: &str) -> bool {
    let Some((res, want)) = parse_line(wanted) else {
        return false;
    };
    current
        .lines()
        .filter_map(parse_line)
        .any(|(r, have)| r == res && want.iter().all(|(id, v)| have.get(id) == Some(v)))
}

/// Find or make the group under `root` (the resctrl mount) for container
/// `id`. Runs before the container's process exists.
pub fn setup(root: &Path, rdt: &LinuxIntelRdt, id: &str) -> Result<Group, Error> {
    let name = match rdt.clos_id().as_deref() {
        Some(c) => {
            let ok = !c.is_empty()
                && c != "."
                && c != ".."
                && !c.contains('/')
                && !c.contains('\0')
                && !RESERVED.contains(&c);
            if !ok {
                return Err(Error::BadClosId(c.to_owned()));
            }
            c
        }
        None => id,
    };
    let dir = root.join(name);
    let lines = wanted_lines(rdt)?;
    let exists = dir.is_dir();
    let mut created = false;
    if lines.is_empty() {
        if !exists {
            if rdt.clos_id().is_some() {
                return Err(Error::Missing(name.to_owned()));
            }
            std::fs::create_dir(&dir).map_err(io_err("create the resctrl group", &dir))?;
            created = true;
        }
    } else if exists {
        let schemata = dir.join("schemata");
        let current = std::fs::read_to_string(&schemata).map_err(io_err("read", &schemata))?;
        if let Some(l) = lines.iter().find(|l| !matches(&current, l)) {
            return Err(Error::Mismatch {
                dir,
                want: l.clone(),
                have: current.trim().to_owned(),
            });
        }
    } else {
        std::fs::create_dir(&dir).map_err(io_err("create the resctrl group", &dir))?;
        created = true;
        // One write, lines in order: the kernel applies them in turn, so
        // `schemata` (last) has the final say, as the spec asks.
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        if let Err(e) = write_file(&dir.join("schemata"), &text) {
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
    }
    let mut group = Group {
        dir,
        created,
        monitor: None,
    };
    let monitoring = rdt.enable_monitoring().unwrap_or(false)
        || rdt.enable_cmt().unwrap_or(false)
        || rdt.enable_mbm().unwrap_or(false);
    if monitoring {
        let mon = group.dir.join("mon_groups").join(id);
        if let Err(e) = std::fs::create_dir_all(&mon) {
            remove(&group);
            return Err(io_err("create the monitoring group", &mon)(e));
        }
        group.monitor = Some(mon);
    }
    Ok(group)
}

/// `update --l3-cache-schema L3:... --mem-bw-schema MB:...`: write new lines
/// to the schemata of a group keel made (a prepared, shared group is left
/// to its owner).
pub fn update(group: &Group, l3: Option<&str>, mem_bw: Option<&str>) -> Result<(), Error> {
    if !group.created {
        return Err(Error::Shared(group.dir.clone()));
    }
    let mut text = String::new();
    if let Some(l3) = l3 {
        for l in l3.lines().map(str::trim).filter(|l| !l.is_empty()) {
            text.push_str(l);
            text.push('\n');
        }
    }
    if let Some(mb) = mem_bw {
        if !mb.trim_start().starts_with("MB:") || mb.trim().contains('\n') {
            return Err(Error::BadMemBw(mb.to_owned()));
        }
        text.push_str(mb.trim());
        text.push('\n');
    }
    if text.is_empty() {
        return Ok(());
    }
    write_file(&group.dir.join("schemata"), &text)
}

/// Put process `pid` in the group (and its monitoring group).
pub fn add(group: &Group, pid: i32) -> Result<(), Error> {
    write_file(&group.dir.join("tasks"), &pid.to_string())?;
    if let Some(mon) = &group.monitor {
        write_file(&mon.join("tasks"), &pid.to_string())?;
    }
    Ok(())
}

/// Remove what keel made; a group someone prepared stays. Best effort: the
/// kernel refuses while tasks remain, and a missing group is fine.
pub fn remove(group: &Group) {
    if let Some(mon) = &group.monitor {
        let _ = std::fs::remove_dir(mon);
    }
    if group.created {
        let _ = std::fs::remove_dir(&group.dir);
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write;
    // create(true): resctrl has these files already (O_CREAT is a no-op
    // there); a test's plain directory does not.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err("open", path))?;
    f.write_all(text.as_bytes()).map_err(io_err("write", path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rdt(json: serde_json::Value) -> LinuxIntelRdt {
        serde_json::from_value(json).unwrap()
    }

    /// A directory shaped like a resctrl mount: the kernel creates
    /// `schemata` and `tasks` in every group; here the test does.
    fn fake_root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("schemata"), "L3:0=fff\nMB:0=100\n").unwrap();
        d
    }

    fn prepare(root: &Path, name: &str, schemata: &str) {
        let g = root.join(name);
        std::fs::create_dir_all(g.join("mon_groups")).unwrap();
        std::fs::write(g.join("schemata"), schemata).unwrap();
        std::fs::write(g.join("tasks"), "").unwrap();
    }

    #[test]
    fn lines_follow_the_spec_order() {
        let r = rdt(serde_json::json!({
            "l3CacheSchema": "L3:0=7f0;1=1f\nMB:0=10",
            "memBwSchema": "MB:0=20;1=70",
            "schemata": ["L2:0=f;1=f"]
        }));
        assert_eq!(
            wanted_lines(&r).unwrap(),
            ["L3:0=7f0;1=1f", "MB:0=20;1=70", "L2:0=f;1=f"]
        );
        let bad = rdt(serde_json::json!({"memBwSchema": "L3:0=1"}));
        assert!(matches!(wanted_lines(&bad), Err(Error::BadMemBw(_))));
    }

    #[test]
    fn existing_group_must_match_as_the_kernel_prints_it() {
        let root = fake_root();
        prepare(
            root.path(),
            "gold",
            "    L3:0=007f0;1=0001f\n    MB:0=  20;1=  70\n",
        );
        let ok = rdt(serde_json::json!({"closID": "gold", "l3CacheSchema": "L3:0=7f0;1=1f"}));
        let g = setup(root.path(), &ok, "c1").unwrap();
        assert!(!g.created);
        let bad = rdt(serde_json::json!({"closID": "gold", "memBwSchema": "MB:0=30;1=70"}));
        let err = setup(root.path(), &bad, "c1").unwrap_err().to_string();
        assert!(err.contains("MB:0=30;1=70"), "{err}");
    }

    #[test]
    fn new_group_gets_the_schema_and_the_tasks() {
        let root = fake_root();
        let r = rdt(serde_json::json!({
            "l3CacheSchema": "L3:0=f",
            "schemata": ["L2:0=3"],
            "enableMonitoring": true
        }));
        let g = setup(root.path(), &r, "c2").unwrap();
        assert_eq!(g.dir, root.path().join("c2"));
        assert!(g.created);
        assert_eq!(
            std::fs::read_to_string(g.dir.join("schemata")).unwrap(),
            "L3:0=f\nL2:0=3\n"
        );
        let mon = g.monitor.clone().unwrap();
        assert_eq!(mon, g.dir.join("mon_groups/c2"));
        add(&g, 4242).unwrap();
        assert_eq!(
            std::fs::read_to_string(g.dir.join("tasks")).unwrap(),
            "4242"
        );
        assert_eq!(std::fs::read_to_string(mon.join("tasks")).unwrap(), "4242");
        // A second container asking for the same closID with another schema
        // is refused; with the same schema it shares the group.
        let other = rdt(serde_json::json!({"closID": "c2", "l3CacheSchema": "L3:0=3"}));
        assert!(matches!(
            setup(root.path(), &other, "c3"),
            Err(Error::Mismatch { .. })
        ));
        let same = rdt(serde_json::json!({"closID": "c2", "l3CacheSchema": "L3:0=00f"}));
        assert!(!setup(root.path(), &same, "c3").unwrap().created);
    }

    #[test]
    fn update_rewrites_only_groups_keel_made() {
        let root = fake_root();
        let g = setup(
            root.path(),
            &rdt(serde_json::json!({"l3CacheSchema": "L3:0=f"})),
            "u1",
        )
        .unwrap();
        update(&g, Some("L3:0=3"), Some("MB:0=50")).unwrap();
        assert_eq!(
            std::fs::read_to_string(g.dir.join("schemata")).unwrap(),
            "L3:0=3\nMB:0=50\n"
        );
        assert!(matches!(
            update(&g, None, Some("L3:0=1")),
            Err(Error::BadMemBw(_))
        ));
        prepare(root.path(), "shared", "L3:0=f\n");
        let s = setup(
            root.path(),
            &rdt(serde_json::json!({"closID": "shared"})),
            "u2",
        )
        .unwrap();
        assert!(matches!(
            update(&s, Some("L3:0=1"), None),
            Err(Error::Shared(_))
        ));
    }

    #[test]
    fn closid_rules() {
        let root = fake_root();
        let missing = rdt(serde_json::json!({"closID": "nope"}));
        assert!(matches!(
            setup(root.path(), &missing, "c"),
            Err(Error::Missing(_))
        ));
        for bad in ["", "..", "a/b", "info", "mon_groups"] {
            let r = rdt(serde_json::json!({"closID": bad}));
            assert!(
                matches!(setup(root.path(), &r, "c"), Err(Error::BadClosId(_))),
                "{bad}"
            );
        }
        prepare(root.path(), "prepared", "L3:0=f\n");
        let r = rdt(serde_json::json!({"closID": "prepared"}));
        let g = setup(root.path(), &r, "c").unwrap();
        assert!(!g.created && g.monitor.is_none());
        remove(&g);
        assert!(
            root.path().join("prepared").is_dir(),
            "a prepared group stays"
        );
    }

    #[test]
    fn mount_point_from_mountinfo() {
        let info = "36 25 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                    40 25 0:40 / /sys/fs/resctrl rw,relatime - resctrl resctrl rw\n";
        assert_eq!(mount_point_in(info), Some(PathBuf::from("/sys/fs/resctrl")));
        assert_eq!(
            mount_point_in("36 25 0:31 / /x rw - ext4 /dev/a rw\n"),
            None
        );
    }
}
