//! The journaled swap of a staged directory into the place of a data directory, and its
//! recovery (normative: `docs/format/swap-journal.md`).
//!
//! 1. The staging directory is complete and durable (the caller made it so).
//! 2. The journal is written to `.DIR.restore-journal.tmp`, fsynced, renamed to
//!    `.DIR.restore-journal`, and the parent fsynced: from here on the swap happens.
//! 3. [`finish`]: the old `DIR` is moved aside as the rollback (or removed if empty), the
//!    staging directory renamed to `DIR`, the parent fsynced; then the journal is removed and
//!    the parent fsynced again.
//!
//! [`recover`] runs step 3 again from whatever a crash left: every step of it is a no-op when
//! already done, so recovery is idempotent and may itself be interrupted.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::journal::{self, Journal};
use super::lock::{is_locked, try_lock_staging};
use super::names::Siblings;
use crate::error::{Error, Result};
use crate::format::fsync_dir;
use crate::vfs::Vfs;

/// What a finished swap left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapOutcome {
    /// The snapshot now in the data directory.
    pub snapshot: String,
    pub target: PathBuf,
    /// Where the previous data is kept, if the target held any.
    pub rollback: Option<PathBuf>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

fn siblings(target: &Path) -> Result<Siblings> {
    Siblings::of(target).ok_or_else(|| {
        Error::InvalidInput(format!(
            "{} does not name a directory entry; give the data directory by its name",
            target.display()
        ))
    })
}

/// Step 2: make the swap of `staging` (an entry beside `target`) durable by journaling it.
/// Returns the journal; [`finish`] performs it.
pub(crate) fn begin(
    vfs: &dyn Vfs,
    staging: &Path,
    target: &Path,
    snapshot: &str,
) -> Result<Journal> {
    let sib = siblings(target)?;
    let staging_name = staging
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|_| staging.parent().map(same_dir(sib.parent())) == Some(true))
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "staging directory {} is not beside {}",
                staging.display(),
                target.display()
            ))
        })?;
    if is_locked(vfs, target)? {
        return Err(Error::Locked {
            path: target.to_path_buf(),
        });
    }
    let j = Journal {
        target: sib.name().to_string(),
        staging: staging_name.to_string(),
        rollback: sib.new_rollback(),
        snapshot: snapshot.to_string(),
    };
    let tmp = sib.path(&sib.journal_tmp());
    let path = sib.path(&sib.journal());
    {
        let mut f = vfs.create(&tmp).map_err(io(&tmp))?;
        f.write_all(&journal::encode(&j)?).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    vfs.rename(&tmp, &path).map_err(io(&path))?;
    fsync_dir(vfs, sib.parent())?;
    Ok(j)
}

/// `a` and `b` name the same directory (`""` and `"."` are the current one).
fn same_dir(a: &Path) -> impl Fn(&Path) -> bool + '_ {
    move |b| {
        let norm = |p: &Path| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        };
        norm(a) == norm(b)
    }
}

/// Step 3 for the journal at hand. `held`: the caller holds the staging directory's lock (the
/// restore that wrote the journal); otherwise recovery takes it, and a staging directory
/// another process holds means that process is swapping right now.
pub(crate) fn finish(vfs: &dyn Vfs, target: &Path, held: bool) -> Result<Option<SwapOutcome>> {
    let Some(sib) = Siblings::of(target) else {
        return Ok(None);
    };
    let jpath = sib.path(&sib.journal());
    let bytes = match vfs.read(&jpath) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&jpath, e)),
    };
    let j = journal::decode(&jpath, &bytes)?;
    if j.target != sib.name() {
        return Err(Error::corrupt(
            &jpath,
            format!("swap journal is for {:?}, not {:?}", j.target, sib.name()),
        ));
    }
    let (staging, target, rollback) = (sib.path(&j.staging), sib.target(), sib.path(&j.rollback));
    if vfs.exists(&staging) {
        let _guard = if held {
            None
        } else {
            Some(try_lock_staging(vfs, &staging)?.ok_or_else(|| {
                Error::Refused(format!(
                    "a restore is swapping {} into {} right now; try again when it is done",
                    staging.display(),
                    target.display()
                ))
            })?)
        };
        move_target_aside(vfs, &target, &rollback, &jpath)?;
        vfs.rename(&staging, &target).map_err(io(&staging))?;
        fsync_dir(vfs, sib.parent())?;
    }
    vfs.remove_file(&jpath).map_err(io(&jpath))?;
    fsync_dir(vfs, sib.parent())?;
    Ok(Some(SwapOutcome {
        snapshot: j.snapshot,
        rollback: vfs.exists(&rollback).then_some(rollback),
        target,
    }))
}

/// Clears the target's name for the staging directory: an empty directory is removed, one
/// with data is renamed to the rollback name. Never moves a directory a server has open.
fn move_target_aside(vfs: &dyn Vfs, target: &Path, rollback: &Path, jpath: &Path) -> Result<()> {
    match vfs.is_dir(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(target, e)),
        Ok(false) => {
            return Err(Error::Refused(format!(
                "swap journal {}: {} is not a directory; move it away and run again",
                jpath.display(),
                target.display()
            )));
        }
        Ok(true) => {}
    }
    if is_locked(vfs, target)? {
        return Err(Error::Locked {
            path: target.to_path_buf(),
        });
    }
    if vfs.read_dir(target).map_err(io(target))?.is_empty() {
        return vfs.remove_dir_all(target).map_err(io(target));
    }
    if vfs.exists(rollback) {
        return Err(Error::Refused(format!(
            "swap journal {}: {} and {} both exist; keep the one you want as {} and run again",
            jpath.display(),
            target.display(),
            rollback.display(),
            target.display()
        )));
    }
    vfs.rename(target, rollback).map_err(io(target))
}

/// Removes what killed restores leave beside `target` when no journal names it: staging
/// directories (incomplete by construction: the journal is written only once one is
/// complete) and half-written journals. A staging directory a running restore holds locked
/// is left alone.
pub(crate) fn remove_stale(vfs: &dyn Vfs, target: &Path) -> Result<usize> {
    let Some(sib) = Siblings::of(target) else {
        return Ok(0);
    };
    let entries = match vfs.read_dir(sib.parent()) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(sib.parent(), e)),
    };
    let prefix = sib.staging_prefix();
    let (journal, tmps) = (sib.journal(), [sib.journal_tmp(), sib.legacy_journal_tmp()]);
    let mut removed = 0;
    for e in entries {
        let p = sib.path(&e.name);
        if e.is_dir && e.name.starts_with(&prefix) && e.name != journal {
            let Some(_lock) = try_lock_staging(vfs, &p)? else {
                continue; // a restore is filling it right now
            };
            tracing::warn!(path = %p.display(), "removing the staging copy of an interrupted restore");
            vfs.remove_dir_all(&p).map_err(io(&p))?;
            removed += 1;
        } else if !e.is_dir && tmps.contains(&e.name) {
            vfs.remove_file(&p).map_err(io(&p))?;
            removed += 1;
        }
    }
    if removed > 0 {
        fsync_dir(vfs, sib.parent())?;
    }
    Ok(removed)
}

/// Finishes a swap a crash interrupted, then removes stale staging directories. Returns what
/// the finished swap left, if there was one. Run by [`crate::Engine::open`] before it locks
/// the directory, and by `strata restore` before it plans.
pub fn recover(vfs: &dyn Vfs, target: &Path) -> Result<Option<SwapOutcome>> {
    let done = finish(vfs, target, false)?;
    if let Some(d) = &done {
        tracing::warn!(
            data_dir = %target.display(),
            snapshot = %d.snapshot,
            "finished a restore swap a crash interrupted"
        );
    }
    remove_stale(vfs, target)?;
    Ok(done)
}
