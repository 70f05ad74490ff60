//! The fetch directory of a restore: `.DIR.fetch-<snapshot>` beside the target `DIR`, where
//! the snapshot's files are downloaded before they are staged. It outlives a killed restore:
//! run again with the same arguments, the restore keeps every file whose size and BLAKE3
//! digest match the manifest and downloads only the rest. A restore that finishes, or fails
//! with an error, removes it (a failed restore leaves nothing behind); only a killed one
//! leaves it, for the next run.
//!
//! Files are hard-linked from here into the staging directory (copied where links are not
//! possible); preparing the staged copy replaces files by rename or truncates only a torn WAL
//! tail, and a later run re-checks every digest anyway.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::manifest::{FileEntry, safe_rel_path};
use crate::progress::Progress;
use crate::repo::Repository;

/// What a fetch reused and what it downloaded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FetchStats {
    /// Files found intact from an earlier, interrupted run.
    pub reused_files: u64,
    pub reused_bytes: u64,
    pub downloaded_files: u64,
    /// Plaintext bytes downloaded.
    pub downloaded_bytes: u64,
    /// Stored (compressed, sealed) bytes read from the repository.
    pub downloaded_stored_bytes: u64,
}

/// `.DIR.fetch-<snapshot>` beside `target`.
pub fn fetch_path(target: &Path, snapshot: &str) -> Option<PathBuf> {
    let name = target.file_name()?.to_str()?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Some(parent.join(format!(".{name}.fetch-{snapshot}")))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

fn dest_of(dir: &Path, snapshot: &str, f: &FileEntry) -> Result<PathBuf> {
    let rel = safe_rel_path(&f.path).ok_or_else(|| Error::HostileManifest {
        snapshot: snapshot.to_string(),
        detail: format!("unsafe path {:?}", f.path),
    })?;
    Ok(dir.join(rel))
}

/// Whether `path` holds exactly `f` (size and digest).
fn intact(path: &Path, f: &FileEntry) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.len() != f.size {
        return false;
    }
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                h.update(&buf[..n]);
            }
            Err(_) => return false,
        }
    }
    hex::encode(h.finalize().as_bytes()) == f.digest
}

/// Removes every file under `dir` that is not one of `wanted` (relative paths): what an
/// earlier run left that is not a file of the snapshot (a manifest a selective restore
/// published, a torn temp file).
fn remove_strays(dir: &Path, base: &Path, wanted: &HashSet<PathBuf>) -> Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for e in rd {
        let e = e.map_err(io(dir))?;
        let p = e.path();
        let ft = e.file_type().map_err(io(&p))?;
        if ft.is_dir() {
            remove_strays(&p, base, wanted)?;
        } else {
            let rel = p.strip_prefix(base).unwrap_or(&p).to_path_buf();
            if !wanted.contains(&rel) {
                std::fs::remove_file(&p).map_err(io(&p))?;
            }
        }
    }
    Ok(())
}

/// Brings `files` into the plan's fetch directory: keeps those already there intact, downloads the
/// rest (each checked against its digest as it streams, then fsynced). Files of the snapshot
/// that this run does not need are kept there for a later one.
pub async fn fetch(
    repo: Arc<Repository>,
    plan: &super::RestorePlan,
    files: &[FileEntry],
    parallelism: usize,
    skip_damaged: bool,
    progress: Arc<Progress>,
) -> Result<(FetchStats, Vec<(FileEntry, String)>)> {
    let (snapshot, dir, all) = (
        plan.snapshot.as_str(),
        plan.fetch_dir.as_path(),
        &plan.manifest.files,
    );
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let wanted: HashSet<PathBuf> = all.iter().filter_map(|f| safe_rel_path(&f.path)).collect();
    let (d, w) = (dir.to_path_buf(), wanted);
    tokio::task::spawn_blocking(move || remove_strays(&d, &d, &w))
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
    let total: u64 = files.iter().map(|f| f.size).sum();
    progress.start("downloading", files.len() as u64, total);
    let sem = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for f in files.iter().cloned() {
        let dest = dest_of(dir, snapshot, &f)?;
        let digest = super::parse_digest(&f.digest)?;
        let (repo, sem, progress) = (repo.clone(), sem.clone(), progress.clone());
        tasks.spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .map_err(|e| Error::Task(e.to_string()))?;
            let (d, fe) = (dest.clone(), f.clone());
            let reuse = tokio::task::spawn_blocking(move || intact(&d, &fe))
                .await
                .map_err(|e| Error::Task(e.to_string()))?;
            if reuse {
                progress.file_done(f.size);
                return Ok::<_, Error>(Got::Reused(f.size));
            }
            // Synchronous on purpose: tokio::fs runs these on the blocking pool, where an
            // aborted task's mkdir or create still completes later and can recreate the
            // tree after a failed restore removed it. Both calls are short.
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            match std::fs::remove_file(&dest) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(&dest, e));
                }
                _ => {}
            }
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&dest)
                .map_err(io(&dest))?;
            let mut file = tokio::fs::File::from_std(file);
            match repo
                .download(&f.object, f.size, &digest, Some(&mut file), &dest)
                .await
            {
                Err(Error::Corrupt { detail, .. }) if skip_damaged => {
                    drop(file);
                    std::fs::remove_file(&dest).map_err(io(&dest))?;
                    progress.file_done(f.size);
                    return Ok(Got::Damaged(f, detail));
                }
                r => r?,
            }
            file.sync_all().await.map_err(io(&dest))?;
            progress.file_done(f.size);
            Ok(Got::Downloaded(f.size, f.stored_size))
        });
    }
    let mut stats = FetchStats::default();
    let mut damaged = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r.map_err(|e| Error::Task(e.to_string())).and_then(|r| r) {
            Ok(Got::Reused(size)) => {
                stats.reused_files += 1;
                stats.reused_bytes += size;
            }
            Ok(Got::Downloaded(size, stored)) => {
                stats.downloaded_files += 1;
                stats.downloaded_bytes += size;
                stats.downloaded_stored_bytes += stored;
            }
            Ok(Got::Damaged(f, why)) => damaged.push((f, why)),
            Err(e) => {
                // Wait for the aborted downloads to stop before the caller removes the tree
                // (a failed restore left its directories behind: found by the corruption
                // sweep).
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                return Err(e);
            }
        }
    }
    Ok((stats, damaged))
}

enum Got {
    Reused(u64),
    /// Plaintext and stored size.
    Downloaded(u64, u64),
    /// With `skip_damaged`: the object failed its checks.
    Damaged(FileEntry, String),
}

/// Hard-links (or copies) `files` from the fetch directory into the staging directory.
pub fn link_into(dir: &Path, staged: &Path, snapshot: &str, files: &[FileEntry]) -> Result<()> {
    for f in files {
        let from = dest_of(dir, snapshot, f)?;
        let to = dest_of(staged, snapshot, f)?;
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(io(&to))?;
            std::fs::File::open(&to)
                .and_then(|f| f.sync_all())
                .map_err(io(&to))?;
        }
    }
    Ok(())
}

/// Removes the fetch directory (after the restore finished or failed).
pub fn remove(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the restore's fetch directory");
    }
}

/// Removes every fetch directory beside `target` (a restore finished: what killed runs of
/// it, or of other snapshots, left is of no use any more).
pub fn remove_all_for(target: &Path) {
    let (Some(name), Some(dir)) = (
        target.file_name().and_then(|n| n.to_str()),
        fetch_path(target, "x"),
    ) else {
        return;
    };
    let prefix = format!(".{name}.fetch-");
    let Some(parent) = dir.parent() else {
        return;
    };
    let Ok(rd) = std::fs::read_dir(parent) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix))
        {
            remove(&e.path());
        }
    }
}
