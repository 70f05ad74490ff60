//! [`StagedDir`]: the directory a restore fills beside its target, checked, prepared (WAL
//! replayed to the cut, index rebuilt, node id recorded, everything durable) and swapped in.
//! Dropped before its swap was journaled, it removes itself: a failed restore never touches
//! the target and leaves nothing behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lock::try_lock_staging;
use super::names::Siblings;
use super::swap::{self, SwapOutcome};
use crate::check::{self, CheckReport};
use crate::engine::{Engine, EngineOptions};
use crate::error::{Error, Result};
use crate::format::{create_dir_all, fsync_dir, remove_all};
use crate::vfs::{LockGuard, RealVfs, Vfs};

/// A staging directory `.DIR.restore-<snapshot>` beside the data directory `DIR`, locked by
/// this process until it is swapped in or dropped.
pub struct StagedDir {
    vfs: Arc<dyn Vfs>,
    path: PathBuf,
    target: PathBuf,
    snapshot: String,
    /// Once the journal exists the staging directory belongs to the swap (recovery finishes
    /// it); it is then never removed on drop.
    journaled: bool,
    _lock: LockGuard,
}

impl std::fmt::Debug for StagedDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedDir")
            .field("path", &self.path)
            .field("target", &self.target)
            .field("snapshot", &self.snapshot)
            .finish()
    }
}

fn valid_snapshot_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl StagedDir {
    /// Creates the staging directory for restoring `snapshot` into `target` (creating
    /// `target`'s parent if needed). A leftover staging directory of the same snapshot is
    /// incomplete by construction and replaced, unless another restore is filling it.
    pub fn create(target: &Path, snapshot: &str) -> Result<StagedDir> {
        StagedDir::create_with(Arc::new(RealVfs), target, snapshot)
    }

    /// [`StagedDir::create`] on another file system (tests).
    pub fn create_with(vfs: Arc<dyn Vfs>, target: &Path, snapshot: &str) -> Result<StagedDir> {
        if !valid_snapshot_id(snapshot) {
            return Err(Error::InvalidInput(format!(
                "snapshot id {snapshot:?} cannot name a staging directory"
            )));
        }
        let sib = Siblings::of(target).ok_or_else(|| {
            Error::InvalidInput(format!(
                "{} does not name a directory entry; give the data directory by its name",
                target.display()
            ))
        })?;
        create_dir_all(&*vfs, sib.parent())?;
        let path = sib.path(&sib.staging(snapshot));
        if vfs.exists(&path) {
            let Some(_old) = try_lock_staging(&*vfs, &path)? else {
                return Err(busy(target));
            };
            remove_all(&*vfs, &path)?;
        }
        vfs.create_dir(&path).map_err(|e| Error::io(&path, e))?;
        let lock = try_lock_staging(&*vfs, &path)?.ok_or_else(|| busy(target))?;
        Ok(StagedDir {
            vfs,
            path,
            target: sib.target(),
            snapshot: snapshot.to_string(),
            journaled: false,
            _lock: lock,
        })
    }

    /// The directory to fill: a data directory's relative paths go below it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The full data-directory check (every manifest epoch, part digest, WAL frame) of what
    /// was staged. Reads only; damage is in the report.
    pub fn check(&self) -> Result<CheckReport> {
        check::check_dir(&self.path)
    }

    /// [`Self::check`] of a staged copy whose files were each verified against `verified`
    /// (path inside the data directory → BLAKE3) as they were fetched: part files whose
    /// metadata records those digests are not read and hashed a second time.
    pub fn check_verified(
        &self,
        verified: &std::collections::HashMap<std::path::PathBuf, [u8; 32]>,
    ) -> Result<CheckReport> {
        check::check_verified_dir(&self.path, verified)
    }

    /// Opens the staged directory once (replays the WAL to the cut, removes nothing
    /// unpublished because there is nothing), rebuilds the series index, closes it (flush,
    /// fsync), records `node_id` if given, and makes the whole tree durable.
    pub fn prepare(&self, node_id: Option<&str>) -> Result<()> {
        let mut o = EngineOptions::new(&self.path);
        o.background = false;
        o.vfs = self.vfs.clone();
        let engine = Engine::open(o)?;
        engine.rebuild_index()?;
        engine.close()?;
        if let Some(id) = node_id {
            super::identity::set_node_id(&*self.vfs, &self.path, id)?;
        }
        sync_tree(&*self.vfs, &self.path)?;
        if let Some(parent) = Siblings::of(&self.target) {
            fsync_dir(&*self.vfs, parent.parent())?;
        }
        Ok(())
    }

    /// The journaled swap (see `docs/format/swap-journal.md`): afterwards the target holds
    /// the staged data and the previous data, if any, is kept as the rollback directory.
    /// Refused while a server holds the target open.
    pub fn swap(mut self) -> Result<SwapOutcome> {
        swap_in_held(
            &*self.vfs,
            &self.path,
            &self.target,
            &self.snapshot,
            &mut self.journaled,
        )
    }
}

/// Where [`StagedDir::create`] puts the staging directory for `snapshot` beside `target`.
pub fn staging_path(target: &Path, snapshot: &str) -> Option<PathBuf> {
    Siblings::of(target).map(|s| s.path(&s.staging(snapshot)))
}

fn busy(target: &Path) -> Error {
    Error::Refused(format!(
        "another restore into {} is running",
        target.display()
    ))
}

/// Journal, then perform, the swap of `staging` into `target`; `journaled` turns true as
/// soon as a journal may exist (from then on only recovery may touch `staging`).
fn swap_in_held(
    vfs: &dyn Vfs,
    staging: &Path,
    target: &Path,
    snapshot: &str,
    journaled: &mut bool,
) -> Result<SwapOutcome> {
    let sib = Siblings::of(target).ok_or_else(|| Error::InvalidInput("bad target".into()))?;
    if let Err(e) = swap::begin(vfs, staging, target, snapshot) {
        *journaled = vfs.exists(&sib.path(&sib.journal()));
        return Err(e);
    }
    *journaled = true;
    swap::finish(vfs, target, true)?
        .ok_or_else(|| Error::corrupt(sib.path(&sib.journal()), "swap journal vanished"))
}

/// Swap the complete, durable directory `staging` (an entry beside `target`) into `target`:
/// what [`StagedDir::swap`] does, for a staging directory built by other means (tests, tools).
pub fn swap_in(
    vfs: &dyn Vfs,
    staging: &Path,
    target: &Path,
    snapshot: &str,
) -> Result<SwapOutcome> {
    swap_in_held(vfs, staging, target, snapshot, &mut false)
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.journaled {
            // Fail closed: the target was never touched; drop the partial copy.
            let _ = remove_all(&*self.vfs, &self.path);
        }
    }
}

/// fsync every directory of a tree (files are fsynced by whoever wrote them).
fn sync_tree(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    for e in vfs.read_dir(dir).map_err(|e| Error::io(dir, e))? {
        if e.is_dir {
            sync_tree(vfs, &dir.join(&e.name))?;
        }
    }
    fsync_dir(vfs, dir)
}
