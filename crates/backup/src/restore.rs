//! `strata restore`: plan, verify the plan's objects, download into a staging directory beside
//! the target, check every digest, check the staged data dir (`strata_engine::check`), open the
//! engine on it (WAL replay to the cut, index rebuild),
//! fsync, then swap atomically, keeping the old directory as `DIR.pre-restore-<time>`.
//!
//! The swap is two renames guarded by a journal (`.DIR.restore-journal` beside the target),
//! written only once the staging directory is complete and durable. [`recover`] (run by the next
//! `strata restore` and by `strata server` before it opens a data directory) finishes a swap
//! that a crash interrupted, so the target is always the old or the new directory, never a mix.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::manifest::{Manifest, safe_rel_path};
use crate::progress::Progress;
use crate::repo::Repository;

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub force: bool,
    pub dry_run: bool,
    /// With `dry_run`: download and check every object's contents.
    pub read_data: bool,
    /// Record this node id in the restored directory (restore onto another node).
    pub node_id: Option<String>,
    pub parallelism: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestorePlan {
    pub snapshot: String,
    pub target: PathBuf,
    pub staging: PathBuf,
    pub files: usize,
    pub objects: usize,
    pub bytes: u64,
    pub stored_bytes: u64,
    /// Whether the target exists and holds anything (it will be kept as `rollback`).
    pub target_in_use: bool,
    pub rollback: Option<PathBuf>,
    #[serde(skip)]
    pub manifest: Manifest,
}

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    target: PathBuf,
    staging: PathBuf,
    rollback: PathBuf,
    snapshot: String,
}

fn sibling(target: &Path, suffix: &str) -> Result<PathBuf> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::InvalidArgument(format!("bad data dir {}", target.display())))?;
    let parent = target.parent().unwrap_or(Path::new("."));
    Ok(parent.join(format!(".{name}.{suffix}")))
}

/// `DIR.pre-restore-<UTC time>-<4 hex>`: unique even for two restores in one second.
fn rollback_path(target: &Path) -> PathBuf {
    let mut s = target.as_os_str().to_os_string();
    s.push(format!(
        ".pre-restore-{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        hex::encode(crate::crypto::random_bytes::<2>())
    ));
    PathBuf::from(s)
}

fn journal_path(target: &Path) -> Result<PathBuf> {
    sibling(target, "restore-journal")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// fsync a directory so the renames and creations inside it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))
}

fn sync_tree(dir: &Path) -> Result<()> {
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let e = e.map_err(io(dir))?;
        let p = e.path();
        if e.file_type().map_err(io(&p))?.is_dir() {
            sync_tree(&p)?;
        }
    }
    sync_dir(dir)
}

/// Whether a running engine holds the data directory's `LOCK` (an advisory file lock).
pub fn is_locked(dir: &Path) -> Result<bool> {
    let path = dir.join("LOCK");
    let f = match std::fs::OpenOptions::new().write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(&path, e)),
    };
    match f.try_lock() {
        Ok(()) => Ok(false),
        Err(std::fs::TryLockError::WouldBlock) => Ok(true),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

fn non_empty(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut rd) => Ok(rd.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Locks a staging directory for the restore filling it (an advisory lock on the directory
/// itself, so nothing is left behind). `None` when another process holds it.
fn lock_dir(dir: &Path) -> Result<Option<std::fs::File>> {
    let f = std::fs::File::open(dir).map_err(io(dir))?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(dir, e)),
    }
}

/// Removes what killed restores leave beside `target` when no journal names it: staging copies
/// (`.NAME.restore-<snapshot>`, full-size and incomplete by construction) and a half-written
/// journal. Call only once the journal is handled; a staging copy a running restore holds
/// locked is left alone.
fn remove_stale_staging(target: &Path) -> Result<usize> {
    let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
        return Ok(0);
    };
    let parent = target.parent().unwrap_or(Path::new("."));
    let staging_prefix = format!(".{name}.restore-");
    let journal_tmp = journal_path(target)?.with_extension("tmp");
    let rd = match std::fs::read_dir(parent) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(parent, e)),
    };
    let mut removed = 0;
    for e in rd {
        let e = e.map_err(io(parent))?;
        let p = e.path();
        let file_name = e.file_name();
        let Some(n) = file_name.to_str() else {
            continue;
        };
        let is_dir = e.file_type().map_err(io(&p))?.is_dir();
        let stale_staging = is_dir
            && n.strip_prefix(&staging_prefix)
                .is_some_and(|rest| rest != "journal");
        if stale_staging {
            let Some(_lock) = lock_dir(&p)? else {
                continue; // a restore is filling it right now
            };
            tracing::warn!(path = %p.display(), "removing the staging copy of an interrupted restore");
            std::fs::remove_dir_all(&p).map_err(io(&p))?;
            removed += 1;
        } else if !is_dir && p == journal_tmp {
            std::fs::remove_file(&p).map_err(io(&p))?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(parent)?;
    }
    Ok(removed)
}

/// Finishes a restore swap a crash interrupted. Returns the snapshot id it completed, if any.
pub fn recover(target: &Path) -> Result<Option<String>> {
    let finished = finish_swap(target)?;
    // With no journal left, a staging copy beside the target belongs to a restore that was
    // killed before its swap, unless a restore is filling it right now (it holds it locked).
    remove_stale_staging(target)?;
    Ok(finished)
}

fn finish_swap(target: &Path) -> Result<Option<String>> {
    let jp = journal_path(target)?;
    let bytes = match std::fs::read(&jp) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&jp, e)),
    };
    let j: Journal = serde_json::from_slice(&bytes)
        .map_err(|e| Error::corrupt(jp.display().to_string(), e.to_string()))?;
    let parent = target.parent().unwrap_or(Path::new("."));
    if j.staging.exists() {
        // The staging directory was complete when the journal was written: finish the swap.
        if target.exists() && !j.rollback.exists() {
            std::fs::rename(target, &j.rollback).map_err(io(target))?;
        } else if target.exists() {
            return Err(Error::Refused(format!(
                "restore journal {} found {} and {} both present; resolve by hand",
                jp.display(),
                target.display(),
                j.rollback.display()
            )));
        }
        std::fs::rename(&j.staging, target).map_err(io(&j.staging))?;
        sync_dir(parent)?;
    }
    std::fs::remove_file(&jp).map_err(io(&jp))?;
    sync_dir(parent)?;
    Ok(Some(j.snapshot))
}

/// Resolves `spec`; for `latest`, every manifest must be readable. `Repository::resolve`
/// skips manifests it cannot load, so a transient store error on the newest one (or damage to
/// it) would silently restore an older snapshot: found by the S3 fault test
/// (`tests/faults.rs`). Restore refuses instead: a transient error is returned as such
/// (retrying can help), a damaged manifest asks the operator to name the snapshot.
async fn resolve_strictly(repo: &Repository, spec: &str) -> Result<String> {
    if spec != "latest" {
        return repo.resolve(spec).await;
    }
    let (manifests, bad) = repo.manifests().await?;
    if let Some((id, e)) = bad.into_iter().next() {
        return Err(match e {
            Error::Corrupt { .. } | Error::UnsupportedVersion { .. } => Error::Refused(format!(
                "cannot tell which snapshot is the latest: the manifest of snapshot {id} cannot \
                 be read ({e}); name the snapshot to restore with --snapshot ID"
            )),
            e => e,
        });
    }
    manifests
        .last()
        .map(|m| m.id.clone())
        .ok_or_else(|| Error::SnapshotNotFound("latest (the repository is empty)".into()))
}

/// Builds the plan; fails early on a locked or (without `force`) non-empty target.
pub async fn plan_restore(
    repo: &Repository,
    spec: &str,
    target: &Path,
    opts: &RestoreOptions,
) -> Result<RestorePlan> {
    let id = resolve_strictly(repo, spec).await?;
    let manifest = repo.load_manifest(&id).await?;
    if is_locked(target)? {
        return Err(Error::Refused(format!(
            "data directory {} is in use by a running strata server; stop it first",
            target.display()
        )));
    }
    let in_use = non_empty(target)?;
    if in_use && !opts.force {
        return Err(Error::Refused(format!(
            "data directory {} is not empty; use --force to replace it (the old one is kept as {}.pre-restore-<time>)",
            target.display(),
            target.display()
        )));
    }
    let mut objects: HashMap<&str, u64> = HashMap::new();
    for f in &manifest.files {
        objects.insert(&f.object, f.stored_size);
    }
    let rollback = in_use.then(|| rollback_path(target));
    Ok(RestorePlan {
        snapshot: id.clone(),
        target: target.to_path_buf(),
        staging: sibling(target, &format!("restore-{id}"))?,
        files: manifest.files.len(),
        objects: objects.len(),
        bytes: manifest.files.iter().map(|f| f.size).sum(),
        stored_bytes: objects.values().sum(),
        target_in_use: in_use,
        rollback,
        manifest,
    })
}

/// Checks that every object of the plan exists with its recorded size (and, with `read_data`,
/// that it decrypts to the recorded digest).
pub async fn verify_plan(
    repo: &Repository,
    plan: &RestorePlan,
    read_data: bool,
    progress: &Progress,
) -> Result<()> {
    let listed = repo.list_objects().await?;
    progress.start("verifying", plan.files as u64, plan.bytes);
    for f in &plan.manifest.files {
        let damaged = |detail: String| Error::Corrupt {
            name: crate::repo::object_path(&f.object).to_string(),
            detail: format!(
                "{detail}; needed for {} of snapshot {}: {}",
                f.path,
                plan.snapshot,
                plan.manifest.affected_by(&f.path)
            ),
        };
        match listed.get(&f.object) {
            None => return Err(damaged("object is missing".into())),
            Some(o) if o.size != f.stored_size => {
                return Err(damaged(format!(
                    "object has {} bytes, the manifest says {}",
                    o.size, f.stored_size
                )));
            }
            Some(_) => {}
        }
        if read_data {
            let digest = parse_digest(&f.digest)?;
            if let Err(e) = repo
                .download(&f.object, f.size, &digest, None, Path::new(&f.path))
                .await
            {
                return Err(match e {
                    Error::Corrupt { detail, .. } => damaged(detail),
                    e => e,
                });
            }
        }
        progress.file_done(f.size);
    }
    Ok(())
}

pub fn parse_digest(s: &str) -> Result<[u8; 32]> {
    hex::decode(s)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| Error::InvalidArgument(format!("bad digest {s}")))
}

async fn download_all(
    repo: Arc<Repository>,
    plan: &RestorePlan,
    parallelism: usize,
    progress: Arc<Progress>,
) -> Result<()> {
    progress.start("downloading", plan.files as u64, plan.bytes);
    let sem = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for f in plan.manifest.files.clone() {
        let rel = safe_rel_path(&f.path).ok_or_else(|| Error::HostileManifest {
            snapshot: plan.snapshot.clone(),
            detail: format!("unsafe path {:?}", f.path),
        })?;
        let dest = plan.staging.join(rel);
        let (repo, sem, progress) = (repo.clone(), sem.clone(), progress.clone());
        let digest = parse_digest(&f.digest)?;
        tasks.spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .map_err(|e| Error::Task(e.to_string()))?;
            // Synchronous on purpose: tokio::fs runs these on the blocking pool, where an
            // aborted task's mkdir or create still completes later and can recreate the
            // staging tree after a failed restore removed it. Both calls are short.
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&dest)
                .map_err(io(&dest))?;
            let mut file = tokio::fs::File::from_std(file);
            repo.download(&f.object, f.size, &digest, Some(&mut file), &dest)
                .await?;
            file.sync_all().await.map_err(io(&dest))?;
            progress.file_done(f.size);
            Ok::<_, Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        let r = r.map_err(|e| Error::Task(e.to_string())).and_then(|r| r);
        if let Err(e) = r {
            // Wait for the aborted downloads to stop before the caller removes the staging
            // tree: a failed restore left `.DIR.restore-ID` behind (found by the corruption
            // sweep).
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            return Err(e);
        }
    }
    Ok(())
}

/// Every object matched its digest on download, but the snapshot itself may hold a file that
/// was already damaged when it was backed up: the full data-dir check (every manifest epoch,
/// every part digest, every WAL frame) runs before the engine opens the staged copy, and any
/// finding fails the restore, naming the repository object that holds the file.
fn refuse_damage(plan: &RestorePlan, report: &strata_engine::check::CheckReport) -> Result<()> {
    let Some(first) = report.damaged.first() else {
        return Ok(());
    };
    let rel = first.path.to_string_lossy().replace('\\', "/");
    let name = plan
        .manifest
        .files
        .iter()
        .find(|f| f.path == rel)
        .map_or_else(
            || rel.clone(),
            |f| crate::repo::object_path(&f.object).to_string(),
        );
    Err(Error::Corrupt {
        name,
        detail: format!(
            "restored file {rel} of snapshot {} fails the data-dir check: {}{}",
            plan.snapshot,
            first.detail,
            match report.damaged.len() {
                1 => String::new(),
                n => format!(" (and {} more findings)", n - 1),
            }
        ),
    })
}

/// Opens the staged directory once: replays the WAL to the cut, rebuilds the series index,
/// records the node id, closes (flush + fsync).
fn open_staged(staging: &Path, node_id: Option<&str>) -> Result<()> {
    let mut o = strata_engine::EngineOptions::new(staging);
    o.background = false;
    let engine = strata_engine::Engine::open(o)?;
    engine.rebuild_index()?;
    engine.close()?;
    if let Some(id) = node_id {
        strata_engine::set_node_id(staging, id)?;
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub snapshot: String,
    pub target: PathBuf,
    pub rollback: Option<PathBuf>,
    pub files: usize,
    pub bytes: u64,
}

/// Executes a plan (see the module docs). The target is untouched until the final swap.
pub async fn restore(
    repo: Arc<Repository>,
    plan: &RestorePlan,
    opts: &RestoreOptions,
    progress: Arc<Progress>,
) -> Result<RestoreReport> {
    verify_plan(&repo, plan, opts.read_data && opts.dry_run, &progress).await?;
    let report = RestoreReport {
        snapshot: plan.snapshot.clone(),
        target: plan.target.clone(),
        rollback: plan.rollback.clone(),
        files: plan.files,
        bytes: plan.bytes,
    };
    if opts.dry_run {
        return Ok(report);
    }
    let parent = plan.target.parent().unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    // A staging dir left by an interrupted run is incomplete by construction: start over,
    // unless another restore of the same snapshot is filling it right now.
    if plan.staging.exists() {
        if lock_dir(&plan.staging)?.is_none() {
            return Err(Error::Refused(format!(
                "another restore into {} is running",
                plan.target.display()
            )));
        }
        std::fs::remove_dir_all(&plan.staging).map_err(io(&plan.staging))?;
    }
    std::fs::create_dir(&plan.staging).map_err(io(&plan.staging))?;
    // Held until the swap: `recover` (a server starting on the target, another restore)
    // leaves a locked staging copy alone.
    let _staging_lock = lock_dir(&plan.staging)?;
    let staged = async {
        download_all(repo.clone(), plan, opts.parallelism, progress.clone()).await?;
        progress.set_phase("checking the restored files");
        let staging = plan.staging.clone();
        let report = tokio::task::spawn_blocking(move || strata_engine::check::check_dir(&staging))
            .await
            .map_err(|e| Error::Task(e.to_string()))??;
        refuse_damage(plan, &report)?;
        progress.set_phase("replaying WAL and rebuilding the index");
        let (staging, node) = (plan.staging.clone(), opts.node_id.clone());
        tokio::task::spawn_blocking(move || open_staged(&staging, node.as_deref()))
            .await
            .map_err(|e| Error::Task(e.to_string()))??;
        sync_tree(&plan.staging)
    }
    .await;
    if let Err(e) = staged {
        // Fail closed: the target was never touched; drop the partial staging copy.
        let _ = std::fs::remove_dir_all(&plan.staging);
        return Err(e);
    }
    progress.set_phase("swapping");
    if is_locked(&plan.target)? {
        let _ = std::fs::remove_dir_all(&plan.staging);
        return Err(Error::Refused(format!(
            "data directory {} was opened by a server during the restore",
            plan.target.display()
        )));
    }
    let rollback = plan
        .rollback
        .clone()
        .unwrap_or_else(|| rollback_path(&plan.target));
    let journal = Journal {
        target: plan.target.clone(),
        staging: plan.staging.clone(),
        rollback: rollback.clone(),
        snapshot: plan.snapshot.clone(),
    };
    let jp = journal_path(&plan.target)?;
    let tmp = jp.with_extension("tmp");
    let bytes = serde_json::to_vec(&journal).map_err(|e| Error::Task(e.to_string()))?;
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &jp).map_err(io(&jp))?;
    sync_dir(&parent)?;
    // An empty target directory is simply replaced; a non-empty one is kept for rollback.
    if plan.target.exists() && !non_empty(&plan.target)? {
        std::fs::remove_dir(&plan.target).map_err(io(&plan.target))?;
    }
    recover(&plan.target)?;
    progress.set_phase("done");
    Ok(RestoreReport {
        rollback: rollback.exists().then_some(rollback),
        ..report
    })
}
