//! Strata backup repository and the backup, verify, restore and prune procedures.
//!
//! Layers, bottom up: [`store`] (object-store back ends and their decorators: retries, limits,
//! fault injection), [`format`] (the framed, compressed, sealed object container), [`crypto`]
//! (key hierarchy), [`config`] (`config` and key files), [`repo`] (the repository: data
//! objects and snapshot manifests), then the procedures on top. The engine is reached only
//! through `strata_engine::backup_api` ([`source`] takes and releases snapshots).

pub mod agent;
pub mod archive;
pub mod backup;
pub mod config;
pub mod content;
pub mod copy;
pub mod crypto;
pub mod diff;
pub mod drill;
pub mod error;
pub mod format;
pub mod gc;
pub mod manifest;
pub mod mount;
pub mod progress;
pub mod prune;
pub mod repo;
pub mod restore;
pub mod settings;
pub mod snapshot_doc;
pub mod source;
pub mod store;
pub mod verify;

pub use error::{Error, Result};
pub use manifest::Manifest;
pub use progress::Progress;
pub use repo::{InitOptions, Repository};
