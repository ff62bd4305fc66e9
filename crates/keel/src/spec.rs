//! Loading and validating `config.json` (and `exec --process` files).
//!
//! Parse errors name the JSON field (via `serde_path_to_error`), validation
//! errors name the rule: "config.json: process.args must not be empty".

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

/// Lowest and highest runtime-spec versions keel accepts.
pub const OCI_VERSION_MIN: &str = "1.0.0";
/// See [`OCI_VERSION_MIN`].
pub const OCI_VERSION_MAX: &str = "1.2.1";

/// Errors reading or validating a bundle's configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// the file could not be read
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// the JSON is malformed or a field has the wrong shape
    #[error("{file}: {field}")]
    Parse {
        file: String,
        field: String,
        #[source]
        source: serde_json::Error,
    },
    /// the configuration breaks a rule of the runtime spec or of keel
    #[error("config.json: {0}")]
    Invalid(String),
}

/// Read `<bundle>/config.json`, parse and validate it.
pub fn load(bundle: &Path) -> Result<Spec, Error> {
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    let spec: Spec = parse(&bytes, "config.json")?;
    validate(&spec)?;
    Ok(spec)
}

/// Parse a process JSON file (`exec --process`); `-` reads stdin.
pub fn load_process(path: &Path) -> Result<Process, Error> {
    let read = if path == Path::new("-") {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).map(|_| v)
    } else {
        std::fs::read(path)
    };
    let bytes = read.map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let process: Process = parse(&bytes, &path.display().to_string())?;
    validate_process(&process).map_err(|e| match e {
        Error::Invalid(m) => Error::Invalid(m.replacen("process.", "", 1)),
        other => other,
    })?;
    Ok(process)
}

/// Deserialize JSON, naming the failing field on error.
///
/// The common case (valid JSON) goes straight through serde_json; only a
/// document that fails is parsed a second time with `serde_path_to_error` to
/// find the field. That keeps the path tracker's code off the start path
/// (it showed up in keel's resident pages).
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], file: &str) -> Result<T, Error> {
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "invalid JSON".to_owned()
        } else {
            path
        };
        Error::Parse {
            file: file.to_owned(),
            field,
            source: e.into_inner(),
        }
    })
}

/// Check the rules that parsing alone does not enforce.
pub fn validate(spec: &Spec) -> Result<(), Error> {
    check_version(spec.version())?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root is required"))?;
    if root.path().as_os_str().is_empty() {
        return Err(invalid("root.path must not be empty"));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process is required"))?;
    validate_process(process)?;
    if let Some(linux) = spec.linux() {
        let mut seen = HashSet::new();
        let namespaces = linux.namespaces().as_deref().unwrap_or_default();
        for ns in namespaces {
            if !seen.insert(ns.typ() as u32) {
                return Err(invalid(format!(
                    "linux.namespaces: {} appears twice",
                    ns_name(ns.typ())
                )));
            }
        }
        let user = namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::User);
        let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        let new_user = namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
        if maps && !user {
            return Err(invalid(
                "linux.uidMappings/gidMappings need a user namespace in linux.namespaces",
            ));
        }
        if new_user && !maps {
            return Err(invalid(
                "a new user namespace needs linux.uidMappings and linux.gidMappings",
            ));
        }
        if let Some(p) = linux.memory_policy() {
            crate::process::mempolicy::Policy::from_spec(p).map_err(|e| invalid(e.to_string()))?;
        }
        crate::process::netdev::validate(spec).map_err(|e| invalid(e.to_string()))?;
    }
    Ok(())
}

/// The rules for a process object (config's `process`, or `exec -p`).
pub fn validate_process(process: &Process) -> Result<(), Error> {
    let args = process.args().as_deref().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(invalid("process.args must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(format!(
            "process.cwd {:?} must be an absolute path",
            process.cwd()
        )));
    }
    for e in process.env().as_deref().unwrap_or_default() {
        if !e.contains('=') || e.starts_with('=') {
            return Err(invalid(format!("process.env entry {e:?} is not KEY=VALUE")));
        }
    }
    Ok(())
}

fn check_version(v: &str) -> Result<(), Error> {
    if v.is_empty() {
        return Err(invalid("ociVersion is required"));
    }
    let core = v.split(['-', '+']).next().unwrap_or(v);
    let mut parts = core.split('.').map(|p| p.parse::<u32>());
    let (major, minor) = match (parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b))) => (a, b),
        _ => {
            return Err(invalid(format!(
                "ociVersion {v:?} is not a version (want MAJOR.MINOR.PATCH)"
            )))
        }
    };
    if major != 1 || minor > 2 {
        return Err(invalid(format!(
            "ociVersion {v:?} is not supported (keel supports {OCI_VERSION_MIN} to {OCI_VERSION_MAX})"
        )));
    }
    Ok(())
}

/// The runtime-spec name of a namespace type.
pub fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    }

    fn check(v: serde_json::Value) -> Result<Spec, Error> {
        let spec: Spec = parse(&serde_json::to_vec(&v).unwrap(), "config.json")?;
        validate(&spec)?;
        Ok(spec)
    }

    fn message(e: &Error) -> String {
        let mut s = e.to_string();
        let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
        while let Some(c) = cur {
            s.push_str(": ");
            s.push_str(&c.to_string());
            cur = c.source();
        }
        s
    }

    #[test]
    fn accepts_a_minimal_config() {
        check(base()).unwrap();
    }

    #[test]
    fn empty_args_is_named() {
        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        let e = check(v).unwrap_err();
        assert_eq!(message(&e), "config.json: process.args must not be empty");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let mut v = base();
        v["process"]["user"]["uid"] = serde_json::json!("root");
        let e = message(&check(v).unwrap_err());
        assert!(
            e.starts_with("config.json: process.user.uid: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn unknown_namespace_is_named() {
        let mut v = base();
        v["linux"]["namespaces"][1]["type"] = serde_json::json!("bogus");
        let e = message(&check(v).unwrap_err());
        assert!(e.contains("linux.namespaces[1].type"), "{e}");
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn unsupported_version() {
        let mut v = base();
        v["ociVersion"] = serde_json::json!("2.0.0");
        let e = message(&check(v).unwrap_err());
        assert!(e.contains("ociVersion \"2.0.0\" is not supported"), "{e}");
        let mut v = base();
        v["ociVersion"] = serde_json::json!("1.2.0-rc.1");
        check(v).unwrap();
    }

    #[test]
    fn relative_cwd_and_duplicate_namespace() {
        let mut v = base();
        v["process"]["cwd"] = serde_json::json!("tmp");
        assert!(message(&check(v).unwrap_err()).contains("process.cwd"));
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "pid"}]);
        assert!(message(&check(v).unwrap_err()).contains("pid appears twice"));
    }

    #[test]
    fn malformed_json() {
        let e = parse::<Spec>(b"{\"ociVersion\": ", "config.json").unwrap_err();
        assert!(message(&e).starts_with("config.json: "), "{}", message(&e));
    }
}
