//! The data directory's `LOCK`: an advisory lock the one process that opens the directory
//! read-write holds until it closes (`docs/format/data-dir.md`), and the lock a restore holds
//! on its staging directory while it fills it.

use std::path::Path;

use crate::error::{Error, Result};
use crate::vfs::{LockGuard, Vfs};

pub const LOCK_FILE: &str = "LOCK";

/// Take the data directory's lock file (created if missing; released when the guard drops).
pub fn try_lock(vfs: &dyn Vfs, dir: &Path) -> Result<LockGuard> {
    let path = dir.join(LOCK_FILE);
    match vfs.try_lock(&path) {
        Ok(Some(guard)) => Ok(guard),
        Ok(None) => Err(Error::Locked {
            path: dir.to_path_buf(),
        }),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Whether a running engine holds `dir`'s lock. Creates nothing: a directory without a
/// `LOCK` file (or no directory at all) is not locked.
pub fn is_locked(vfs: &dyn Vfs, dir: &Path) -> Result<bool> {
    let path = dir.join(LOCK_FILE);
    if !vfs.exists(&path) {
        return Ok(false);
    }
    match vfs.try_lock(&path) {
        Ok(guard) => Ok(guard.is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Lock a staging directory itself (nothing is created in it). `None` when another process
/// (a restore filling it) holds it.
pub fn try_lock_staging(vfs: &dyn Vfs, dir: &Path) -> Result<Option<LockGuard>> {
    vfs.try_lock_dir(dir).map_err(|e| Error::io(dir, e))
}
