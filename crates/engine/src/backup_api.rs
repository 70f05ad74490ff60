//! The engine API the backup crate uses, and nothing else of the engine (a test,
//! `crates/backup/tests/engine_seam.rs`, keeps it so).
//!
//! - restore ([`restore`]): inspect a target, stage, check and prepare a staged directory,
//!   swap it in, recover an interrupted swap;
//! - the catalog as the repository stores it ([`catalog`]): a versioned export that belongs
//!   to the repository format, not the engine's in-memory type.

pub mod catalog;
pub mod restore;

pub use catalog::{CATALOG_EXPORT_VERSION, CatalogExport};
pub use restore::*;
