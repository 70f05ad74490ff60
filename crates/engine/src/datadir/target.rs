//! What a restore may replace: nothing (absent), an empty directory, or a Strata data
//! directory. Anything else (`/etc`, `/tmp`, a home directory, a file) is refused with the
//! reason, before anything is written.

use std::path::Path;

use crate::error::{Error, Result};
use crate::meta_files::{self, ENGINE_FILE};
use crate::vfs::Vfs;

/// A restore target that may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    /// Nothing there yet.
    Absent,
    /// An empty directory (replaced, not kept).
    Empty,
    /// A Strata data directory (its `ENGINE` file reads): kept as the rollback.
    DataDir,
}

/// Classifies `target`; refuses what is neither absent, empty nor a Strata data directory.
pub fn inspect_target(vfs: &dyn Vfs, target: &Path) -> Result<TargetState> {
    let refuse = |why: String| {
        Err(Error::Refused(format!(
            "refusing to restore into {}: {why}; restore replaces only an empty directory or a \
             Strata data directory",
            target.display()
        )))
    };
    match vfs.is_dir(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TargetState::Absent),
        Err(e) => return Err(Error::io(target, e)),
        Ok(false) if std::fs::symlink_metadata(target).is_ok_and(|m| m.is_symlink()) => {
            return refuse("it is a symbolic link (give the directory it points to)".into());
        }
        Ok(false) => return refuse("it is not a directory".into()),
        Ok(true) => {}
    }
    let entries = vfs.read_dir(target).map_err(|e| Error::io(target, e))?;
    if entries.is_empty() {
        return Ok(TargetState::Empty);
    }
    match meta_files::read_engine(vfs, target) {
        // A newer Strata's data directory is still one (restoring an older backup over it
        // is a rollback).
        Ok(Some(_)) | Err(Error::UnsupportedVersion { .. }) => Ok(TargetState::DataDir),
        Ok(None) => refuse(format!(
            "it holds {} entries and no {ENGINE_FILE} file, so it is not a Strata data directory",
            entries.len()
        )),
        Err(e) => refuse(format!("its {ENGINE_FILE} file does not read ({e})")),
    }
}
