//! keel: an OCI runtime with runc's command line.
//!
//! Layout: [`spec`] loads config.json, [`state`] owns the state directory,
//! [`container`] implements each lifecycle operation, [`process`] creates
//! the container's processes, [`rootfs`] and [`security`] set up the
//! filesystem and process attributes inside it.

pub mod console;
pub mod container;
pub mod hooks;
pub mod log;
pub mod process;
pub mod rdt;
pub mod rootfs;
pub mod security;
pub mod spec;
pub mod state;
