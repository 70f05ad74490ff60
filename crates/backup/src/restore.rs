//! `strata restore`: plan (refusing targets that are neither empty nor a data directory, and
//! the repository itself), verify the plan's objects (with `read_data`, their contents), then
//! download into the staging directory the engine hands out
//! ([`strata_engine::backup_api::StagedDir`]), check every digest, and ask the engine to check
//! the staged data dir, prepare it (WAL replay to the cut, index rebuild, node id, fsync) and
//! swap it in atomically, keeping the old directory as `DIR.pre-restore-<time>`.
//!
//! The swap, its journal and the recovery of an interrupted swap belong to the engine
//! (`docs/format/swap-journal.md`): opening the engine on a data directory finishes a swap a
//! crash interrupted, so the target is always the old or the new directory, never a mix.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
pub use strata_engine::backup_api::SwapOutcome;
use strata_engine::backup_api::{self, CheckReport, StagedDir, TargetState};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::manifest::{Manifest, safe_rel_path};
use crate::progress::Progress;
use crate::repo::Repository;

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub force: bool,
    pub dry_run: bool,
    /// Download and check every object's contents before writing anything (with or
    /// without `dry_run`).
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
    /// Whether the target is a data directory (it will be kept as `rollback`).
    pub target_in_use: bool,
    /// `DIR.pre-restore-<UTC time>` when the target holds data (the swap picks the name).
    pub rollback: Option<PathBuf>,
    #[serde(skip)]
    pub manifest: Manifest,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// Finishes a restore swap a crash interrupted (what opening the engine on `target` does
/// first). Returns what the finished swap left, if there was one.
pub fn recover(target: &Path) -> Result<Option<SwapOutcome>> {
    Ok(backup_api::recover(target)?)
}

/// The canonical form of `p`, or of its nearest existing ancestor joined with the rest (the
/// target need not exist yet).
fn resolved(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut existing = abs.clone();
    let mut rest = Vec::new();
    loop {
        if let Ok(mut c) = existing.canonicalize() {
            c.extend(rest.iter().rev());
            return c;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(n), Some(parent)) => {
                rest.push(n.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return abs,
        }
    }
}

/// Refuses a target that is, contains or lies inside a local repository.
fn refuse_repository_target(repo: &Repository, target: &Path) -> Result<()> {
    let Some(repo_dir) = crate::store::local_dir(repo.url()) else {
        return Ok(());
    };
    let (r, t) = (resolved(&repo_dir), resolved(target));
    let why = if r == t {
        "it is the repository"
    } else if r.starts_with(&t) {
        "it contains the repository"
    } else if t.starts_with(&r) {
        "it is inside the repository"
    } else {
        return Ok(());
    };
    Err(Error::Refused(format!(
        "refusing to restore into {}: {why} ({})",
        target.display(),
        repo.url()
    )))
}

/// Resolves `spec`; for `latest`, every manifest must be readable. `Repository::resolve`
/// skips manifests it cannot load, so a transient store error on the newest one (or damage to
/// it) would silently restore an older snapshot: found by the S3 fault test
/// (`tests/faults.rs`). Restore refuses instead: a transient error is returned as such
/// (retrying can help), a damaged manifest asks the operator to name the snapshot.
pub async fn resolve_snapshot(repo: &Repository, spec: &str) -> Result<String> {
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
    let id = resolve_snapshot(repo, spec).await?;
    let manifest = repo.load_manifest(&id).await?;
    refuse_repository_target(repo, target)?;
    if backup_api::is_locked(target)? {
        return Err(Error::Refused(format!(
            "data directory {} is in use by a running strata server; stop it first",
            target.display()
        )));
    }
    // Refuses, saying why, anything but an absent or empty directory or a data directory.
    let in_use = backup_api::inspect_target(target)? == TargetState::DataDir;
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
    let rollback = in_use.then(|| {
        let mut s = target.as_os_str().to_os_string();
        s.push(".pre-restore-<UTC time>");
        PathBuf::from(s)
    });
    let staging = backup_api::staging_path(target, &id).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "data directory {} must end in a directory name",
            target.display()
        ))
    })?;
    Ok(RestorePlan {
        snapshot: id.clone(),
        target: target.to_path_buf(),
        staging,
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
    staging: &Path,
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
        let dest = staging.join(rel);
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
fn refuse_damage(plan: &RestorePlan, report: &CheckReport) -> Result<()> {
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

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub snapshot: String,
    pub target: PathBuf,
    pub rollback: Option<PathBuf>,
    pub files: usize,
    pub bytes: u64,
    /// Whether every object was downloaded and checked before anything was written
    /// (`read_data`).
    pub data_verified: bool,
}

/// Runs a blocking engine call off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))
}

/// Executes a plan (see the module docs). The target is untouched until the final swap.
pub async fn restore(
    repo: Arc<Repository>,
    plan: &RestorePlan,
    opts: &RestoreOptions,
    progress: Arc<Progress>,
) -> Result<RestoreReport> {
    verify_plan(&repo, plan, opts.read_data, &progress).await?;
    let report = RestoreReport {
        snapshot: plan.snapshot.clone(),
        target: plan.target.clone(),
        rollback: None,
        files: plan.files,
        bytes: plan.bytes,
        data_verified: opts.read_data,
    };
    if opts.dry_run {
        return Ok(RestoreReport {
            rollback: plan.rollback.clone(),
            ..report
        });
    }
    // The engine hands out the staging directory, locked until the swap; dropped on any
    // failure below, it removes itself: the target is never touched.
    let (target, id) = (plan.target.clone(), plan.snapshot.clone());
    let staged = blocking(move || StagedDir::create(&target, &id)).await??;
    download_all(
        repo.clone(),
        plan,
        staged.path(),
        opts.parallelism,
        progress.clone(),
    )
    .await?;
    progress.set_phase("checking the restored files");
    let (staged, found) = blocking(move || {
        let r = staged.check();
        (staged, r)
    })
    .await?;
    refuse_damage(plan, &found?)?;
    progress.set_phase("replaying WAL and rebuilding the index");
    let node = opts.node_id.clone();
    let (staged, prepared) = blocking(move || {
        let r = staged.prepare(node.as_deref());
        (staged, r)
    })
    .await?;
    prepared?;
    progress.set_phase("swapping");
    let swapped = blocking(move || staged.swap())
        .await?
        .map_err(|e| match e {
            backup_api::Error::Locked { .. } => Error::Refused(format!(
                "data directory {} was opened by a server during the restore",
                plan.target.display()
            )),
            e => e.into(),
        })?;
    progress.set_phase("done");
    Ok(RestoreReport {
        rollback: swapped.rollback,
        ..report
    })
}
