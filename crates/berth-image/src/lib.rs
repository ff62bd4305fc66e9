//! berth-image: image references, the registry client, the content store,
//! overlay snapshots, safe layer unpacking, and image → OCI bundle.
//!
//! The library does not care which process calls it: today the `berth` CLI
//! runs it in-process against `--data-root`; berthd will own it next.
//!
//! Module owners (while the crate is being built in parallel):
//! * reference, registry, auth, push: registry work
//! * digest, content, metadata, snapshot, pull, gc, platform, store: store work
//! * unpack, archive: unpack work
//! * spec, bundle: bundle work

pub mod archive;
pub mod auth;
pub mod bundle;
pub mod content;
pub mod digest;
pub mod gc;
pub mod metadata;
mod openat2;
pub mod platform;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod snapshot;
pub mod spec;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use reference::Reference;
pub use store::ImageStore;
