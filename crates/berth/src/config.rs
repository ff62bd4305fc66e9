//! Where the store lives and how it reaches registries: `--data-root`,
//! `--config` (daemon.json), with Docker's key names.

use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_image::registry;
use berth_image::store::{ImageStore, StoreConfig};
use serde::Deserialize;

/// Docker's default data root, renamed.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";

/// The daemon.json keys the image commands read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DaemonConfig {
    pub data_root: Option<PathBuf>,
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
}

impl DaemonConfig {
    /// Read `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        serde_json::from_str(&text)
            .with_context(|| format!("{}: invalid daemon configuration", path.display()))
    }
}

/// Settings resolved from the global flags and daemon.json.
pub struct Settings {
    pub data_root: PathBuf,
    pub registry: registry::Config,
}

impl Settings {
    /// `--data-root` wins over daemon.json's `data-root`.
    pub fn new(data_root: Option<PathBuf>, config_file: &Path) -> anyhow::Result<Self> {
        let daemon = DaemonConfig::load(config_file)?;
        let data_root = data_root
            .or(daemon.data_root)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_ROOT));
        let registry = registry::Config {
            insecure_registries: daemon.insecure_registries,
            registry_mirrors: daemon.registry_mirrors,
            ..Default::default()
        };
        Ok(Self {
            data_root,
            registry,
        })
    }

    /// Open the image store under the data root.
    pub fn open_store(&self) -> anyhow::Result<ImageStore> {
        ImageStore::open(StoreConfig {
            data_root: self.data_root.clone(),
            registry: self.registry.clone(),
        })
        .with_context(|| format!("opening the image store in {}", self.data_root.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_json_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("daemon.json");
        std::fs::write(
            &file,
            r#"{"data-root": "/srv/berth", "insecure-registries": ["reg:5000"],
                "registry-mirrors": ["https://mirror"], "log-level": "debug"}"#,
        )
        .expect("write");
        let settings = Settings::new(None, &file).expect("settings");
        assert_eq!(settings.data_root, PathBuf::from("/srv/berth"));
        assert_eq!(settings.registry.insecure_registries, ["reg:5000"]);
        let flagged = Settings::new(Some("/x".into()), &file).expect("settings");
        assert_eq!(flagged.data_root, PathBuf::from("/x"));
        let missing = Settings::new(None, &dir.path().join("none.json")).expect("missing is fine");
        assert_eq!(missing.data_root, PathBuf::from(DEFAULT_DATA_ROOT));
        std::fs::write(&file, "{").expect("write");
        assert!(Settings::new(None, &file).is_err());
    }
}
