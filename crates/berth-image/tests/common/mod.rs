//! Setup shared by berth-image's integration tests.

#![allow(dead_code)]

use std::path::Path;

use berth_image::store::{ImageStore, StoreConfig};

/// An image store under `root` with the default registry configuration.
pub fn open_store(root: &Path) -> ImageStore {
    ImageStore::open(StoreConfig {
        data_root: root.to_owned(),
        registry: Default::default(),
    })
    .unwrap_or_else(|e| panic!("opening a store at {}: {e}", root.display()))
}
