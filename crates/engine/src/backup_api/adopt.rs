//! Online restore, engine side: a restore builds the groups it brings back in a staging
//! directory inside the running engine's data directory, then the engine publishes them in
//! one step. Normative: `docs/format/adopt-journal.md`.
//!
//! - [`create_staging`] makes `adopt/<id>/`, a fresh data directory whose part ids come from
//!   a range the live engine reserved; [`open_staging`] opens an engine on it (the restore
//!   writes its selection there with [`super::copy_selection`], then closes it);
//! - [`adopt`] publishes whole groups from it: a new group, a group that no longer exists
//!   (it comes back under its name), or, with `replace`, an existing group swapped whole. A
//!   query sees all of the adopted groups or none; ingest and queries go on meanwhile; a
//!   crash leaves the data as it was or, once the journal is written, fully adopted after
//!   the next open. Refused: a new group whose name exists, a group a running backup's
//!   snapshot is reading;
//! - [`discard_staging`] removes a staging directory that will not be adopted (opening the
//!   engine removes leftovers too).

use std::path::{Path, PathBuf};

pub use crate::catalog::validate_group_name;
pub use crate::engine::adopt::{AdoptGroup, Adopted, STAGED_PART_IDS};
pub use crate::engine::adopt_journal::{ADOPT_FILE, ADOPT_MAGIC, ADOPT_VERSION, STAGING_DIR};

use crate::Engine;
use crate::error::Result;

/// Creates the staging directory of restore `id` under `engine`'s data directory.
pub fn create_staging(engine: &Engine, id: &str) -> Result<PathBuf> {
    engine.create_staging(id)
}

/// Opens the engine a restore writes its selection into (no background work, no field caps:
/// the data was accepted once already). Close it before [`adopt`].
pub fn open_staging(staged: &Path) -> Result<Engine> {
    super::open_target(staged)
}

/// Publishes `groups` of the closed staging directory `staged` in `engine` in one step.
pub fn adopt(engine: &Engine, staged: &Path, groups: &[AdoptGroup]) -> Result<Adopted> {
    engine.adopt(staged, groups)
}

/// Removes a staging directory without adopting it.
pub fn discard_staging(engine: &Engine, staged: &Path) -> Result<()> {
    engine.discard_staging(staged)
}
