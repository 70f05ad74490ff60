//! Continuous WAL archiving and point-in-time recovery (normative layout:
//! `docs/format/repository.md`, "Archive objects").
//!
//! - [`object`]: archive objects — WAL v2 records named by LSN and commit-time range, sealed
//!   like every repository object, written once;
//! - [`ship`]: the archiver loop's steps (what `strata server` runs with `[archive]`): read
//!   durable records after the engine's archive cursor, write them, advance the cursor;
//! - [`window`]: the point-in-time windows and gaps, from object names and manifests;
//! - [`pitr`]: `restore --at TIME` — plan, and staging of archived WAL for the restore.

pub mod compat;
pub mod object;
pub mod pitr;
pub mod retention;
pub mod ship;
pub mod window;
