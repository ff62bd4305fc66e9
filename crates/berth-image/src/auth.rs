//! Registry credentials in Docker's `config.json` format.
//!
//! Reads the `auths` map (`auth` = base64 `user:password`, or separate
//! `username`/`password`, plus `identitytoken`); `berth login` writes and
//! `berth logout` removes entries in the same file, keeping every other key
//! (`credsStore`, `proxies`, `HttpHeaders`, …) as it was. The file is written
//! atomically with mode 0600.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{Map, Value};

/// The `auths` key Docker uses for Docker Hub.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Errors reading or writing the credentials file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// reading failed
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// writing failed
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// not JSON, or `auths` is not an object
    #[error("{path}: not a valid Docker config file")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// `auths` or the file itself is not a JSON object
    #[error("{path}: {what} must be a JSON object")]
    Shape { path: PathBuf, what: &'static str },
    /// the base64 `auth` field does not decode to `user:password`
    #[error("{path}: the auth entry for {registry} is not base64 of user:password")]
    BadAuth { path: PathBuf, registry: String },
}

/// Credentials for one registry.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// user name (may be empty when only an identity token is stored)
    pub username: String,
    /// password or personal access token
    pub password: String,
    /// OAuth2 refresh token (`identitytoken`) sent to the token endpoint
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field(
                "identity_token",
                &self.identity_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Credentials {
    /// User name and password.
    pub fn basic(username: &str, password: &str) -> Self {
        Self {
            username: username.to_owned(),
            password: password.to_owned(),
            identity_token: None,
        }
    }

    /// The `auth` field: base64 of `user:password`.
    pub fn encode_auth(&self) -> String {
        STANDARD.encode(format!("{}:{}", self.username, self.password))
    }

    /// Decode an `auth` field.
    pub fn decode_auth(auth: &str) -> Option<Self> {
        let raw = STANDARD.decode(auth.trim()).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (user, pass) = text.split_once(':')?;
        Some(Self::basic(user, pass.trim_end_matches('\0')))
    }
}

/// `~/.docker/config.json`, or `$DOCKER_CONFIG/config.json` when set.
pub fn default_config_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return PathBuf::from(dir).join("config.json");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".docker/config.json")
}

/// The registry name an `auths` key stands for: scheme and path removed,
/// Docker Hub's aliases folded into `docker.io`.
pub fn normalize_registry(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_owned(),
        h => h.to_owned(),
    }
}

/// The `auths` key `login` writes for a registry (Docker's choice).
pub fn key_for(registry: &str) -> String {
    match normalize_registry(registry).as_str() {
        "docker.io" => DOCKER_HUB_KEY.to_owned(),
        other => other.to_owned(),
    }
}

/// The credentials found in one config file.
#[derive(Debug, Clone, Default)]
pub struct CredentialStore {
    by_registry: BTreeMap<String, Credentials>,
}

impl CredentialStore {
    /// Read `path`; a missing file means no credentials.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let Some(doc) = read_doc(path)? else {
            return Ok(Self::default());
        };
        for helper in ["credsStore", "credHelpers"] {
            if doc.get(helper).is_some() {
                tracing::warn!(
                    path = %path.display(),
                    helper,
                    "credential helpers are not supported; using only the auths entries"
                );
            }
        }
        let mut by_registry = BTreeMap::new();
        let Some(auths) = doc.get("auths") else {
            return Ok(Self::default());
        };
        let auths = auths.as_object().ok_or_else(|| Error::Shape {
            path: path.to_owned(),
            what: "auths",
        })?;
        for (key, entry) in auths {
            if let Some(creds) = entry_credentials(path, key, entry)? {
                by_registry.insert(normalize_registry(key), creds);
            }
        }
        Ok(Self { by_registry })
    }

    /// Credentials for a registry (`docker.io`, `127.0.0.1:5000`).
    pub fn get(&self, registry: &str) -> Option<&Credentials> {
        self.by_registry.get(&normalize_registry(registry))
    }

    /// Add or replace credentials in memory.
    pub fn insert(&mut self, registry: &str, creds: Credentials) {
        self.by_registry.insert(normalize_registry(registry), creds);
    }
}

fn entry_credentials(path: &Path, key: &str, entry: &Value) -> Result<Option<Credentials>, Error> {
    let field = |name: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let mut creds = match (field("auth"), field("username"), field("password")) {
        (Some(auth), _, _) => Credentials::decode_auth(auth).ok_or_else(|| Error::BadAuth {
            path: path.to_owned(),
            registry: key.to_owned(),
        })?,
        (None, Some(u), Some(p)) => Credentials::basic(u, p),
        _ => Credentials::default(),
    };
    creds.identity_token = field("identitytoken").map(str::to_owned);
    let empty = creds.username.is_empty() && creds.password.is_empty();
    Ok((!empty || creds.identity_token.is_some()).then_some(creds))
}

/// `login`: store `creds` for `registry` in `path`, keeping everything else.
pub fn store(path: &Path, registry: &str, creds: &Credentials) -> Result<(), Error> {
    let mut doc = read_doc(path)?.unwrap_or_default();
    let auths = auths_mut(path, &mut doc)?;
    let wanted = normalize_registry(registry);
    auths.retain(|k, _| normalize_registry(k) != wanted);
    let mut entry = Map::new();
    entry.insert("auth".into(), Value::String(creds.encode_auth()));
    if let Some(token) = &creds.identity_token {
        entry.insert("identitytoken".into(), Value::String(token.clone()));
    }
    auths.insert(key_for(registry), Value::Object(entry));
    write_doc(path, &doc)
}

/// `logout`: remove every entry for `registry`; `false` when there was none.
pub fn erase(path: &Path, registry: &str) -> Result<bool, Error> {
    let Some(mut doc) = read_doc(path)? else {
        return Ok(false);
    };
    let auths = auths_mut(path, &mut doc)?;
    let wanted = normalize_registry(registry);
    let before = auths.len();
    auths.retain(|k, _| normalize_registry(k) != wanted);
    if auths.len() == before {
        return Ok(false);
    }
    write_doc(path, &doc)?;
    Ok(true)
}

fn read_doc(path: &Path) -> Result<Option<Map<String, Value>>, Error> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(Map::new()));
    }
    let value: Value = serde_json::from_slice(&text).map_err(|source| Error::Parse {
        path: path.to_owned(),
        source,
    })?;
    match value {
        Value::Object(map) => Ok(Some(map)),
        _ => Err(Error::Shape {
            path: path.to_owned(),
            what: "the file",
        }),
    }
}

fn auths_mut<'a>(
    path: &Path,
    doc: &'a mut Map<String, Value>,
) -> Result<&'a mut Map<String, Value>, Error> {
    doc.entry("auths")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| Error::Shape {
            path: path.to_owned(),
            what: "auths",
        })
}

/// Temp file (0600) + fsync + rename, so a crash leaves the old or new file.
fn write_doc(path: &Path, doc: &Map<String, Value>) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    let mut text = serde_json::to_vec_pretty(doc).map_err(|e| err(e.into()))?;
    text.push(b'\n');
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("config.json"),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        // The write error is the one to report; a leftover temp file is
        // overwritten by the next store.
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn auth_field_round_trips() {
        let c = Credentials::basic("user", "p:ss");
        assert_eq!(c.encode_auth(), "dXNlcjpwOnNz");
        assert_eq!(Credentials::decode_auth("dXNlcjpwOnNz"), Some(c));
        assert_eq!(Credentials::decode_auth("!!"), None);
        assert_eq!(Credentials::decode_auth("bm9jb2xvbg=="), None); // "nocolon"
    }

    #[test]
    fn keys_normalise_like_docker() {
        assert_eq!(normalize_registry(DOCKER_HUB_KEY), "docker.io");
        assert_eq!(normalize_registry("index.docker.io"), "docker.io");
        assert_eq!(
            normalize_registry("http://127.0.0.1:5000/v2/"),
            "127.0.0.1:5000"
        );
        assert_eq!(key_for("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(key_for("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn load_reads_every_form() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"dXNlcjpwOnNz"},
                "quay.io":{"username":"q","password":"w"},
                "ghcr.io":{"auth":"","identitytoken":"tok"},
                "empty.io":{}
            },"credsStore":"desktop"}"#,
        )
        .unwrap();
        let store = CredentialStore::load(&path).unwrap();
        assert_eq!(
            store.get("docker.io"),
            Some(&Credentials::basic("user", "p:ss"))
        );
        assert_eq!(store.get("quay.io"), Some(&Credentials::basic("q", "w")));
        assert_eq!(
            store.get("ghcr.io").and_then(|c| c.identity_token.clone()),
            Some("tok".into())
        );
        assert_eq!(store.get("empty.io"), None);
        let missing = CredentialStore::load(&dir.path().join("nope.json")).unwrap();
        assert_eq!(missing.get("docker.io"), None);
    }

    #[test]
    fn login_and_logout_keep_other_keys_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            r#"{"auths":{"index.docker.io":{"auth":"eDp5"},"other:1":{"auth":"eDp5"}},"proxies":{"default":{}},"HttpHeaders":{"X":"1"}}"#,
        )
        .unwrap();
        store(&path, "docker.io", &Credentials::basic("u", "p")).unwrap();
        let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc["proxies"], serde_json::json!({"default": {}}));
        assert_eq!(doc["HttpHeaders"]["X"], "1");
        assert_eq!(doc["auths"][DOCKER_HUB_KEY]["auth"], "dTpw");
        assert!(
            doc["auths"].get("index.docker.io").is_none(),
            "alias replaced"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        assert!(erase(&path, "docker.io").unwrap());
        assert!(!erase(&path, "docker.io").unwrap());
        let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(doc["auths"].get(DOCKER_HUB_KEY).is_none());
        assert!(doc["auths"].get("other:1").is_some());
        assert_eq!(doc["HttpHeaders"]["X"], "1");
    }

    #[test]
    fn login_creates_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/.docker/config.json");
        store(&path, "127.0.0.1:5000", &Credentials::basic("a", "b")).unwrap();
        let loaded = CredentialStore::load(&path).unwrap();
        assert_eq!(
            loaded.get("127.0.0.1:5000"),
            Some(&Credentials::basic("a", "b"))
        );
        assert!(!erase(&dir.path().join("absent.json"), "x").unwrap());
    }
}
