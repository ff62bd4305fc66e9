//! One file per command; each parses nothing itself and calls the library.

pub mod bundle;
pub mod images;
pub mod inspect;
pub mod login;
pub mod pull;
pub mod rmi;
pub mod tag;
pub mod transfer;
