//! Restore-side engine API: the backup crate downloads a snapshot's files into a
//! [`StagedDir`] the engine hands it, then asks the engine to check, prepare and swap it.

use std::path::Path;

pub use crate::check::{CheckReport, Finding};
pub use crate::datadir::{StagedDir, SwapOutcome, TargetState, staging_path};
pub use crate::error::{Error, Result};
pub use crate::set_node_id;

use crate::vfs::RealVfs;

/// What a restore may replace at `target` (refuses anything but an absent or empty
/// directory or a Strata data directory, saying why).
pub fn inspect_target(target: &Path) -> Result<TargetState> {
    crate::datadir::inspect_target(&RealVfs, target)
}

/// Whether a running engine (a `strata server`) holds the data directory.
pub fn is_locked(dir: &Path) -> Result<bool> {
    crate::datadir::is_locked(&RealVfs, dir)
}

/// Finish a restore swap a crash interrupted and remove stale staging directories (what
/// opening the engine on `target` does first). Returns the finished swap, if any.
pub fn recover(target: &Path) -> Result<Option<SwapOutcome>> {
    crate::datadir::recover(&RealVfs, target)
}
