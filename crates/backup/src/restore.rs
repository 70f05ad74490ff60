//! `strata restore`: plan (refusing targets that are neither empty nor a data directory, and
//! the repository itself), verify the plan's objects (with `read_data`, their contents), then
//! download into the staging directory the engine hands out
//! ([`strata_engine::backup_api::StagedDir`]), check every digest, and ask the engine to check
//! the staged data dir, prepare it (WAL replay to the cut, index rebuild, node id, fsync) and
//! swap it in atomically, keeping the old directory as `DIR.pre-restore-<time>`.
//!
//! Files are downloaded into a fetch directory beside the target first ([`fetch`]): a
//! killed restore run again reuses what it already fetched and verified. A filter or another
//! shard count ([`RestoreFilter`], [`select`]) fetches only the parts the filter needs and
//! rewrites the selection into the staging directory instead of copying files.
//!
//! The swap, its journal and the recovery of an interrupted swap belong to the engine
//! (`docs/format/swap-journal.md`): opening the engine on a data directory finishes a swap a
//! crash interrupted, so the target is always the old or the new directory, never a mix.

pub mod damage;
pub mod fetch;
pub mod online;
pub mod select;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
pub use strata_engine::backup_api::SwapOutcome;
use strata_engine::backup_api::{self, CheckReport, CopyStats, StagedDir, TargetState};

use crate::error::{Error, Result};
use crate::manifest::{FileEntry, Manifest};
use crate::progress::Progress;
use crate::repo::Repository;
pub use damage::Skipped;
pub use fetch::FetchStats;
pub use select::{RestoreFilter, SelectivePlan};

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub force: bool,
    pub dry_run: bool,
    /// Download and check every object's contents before writing anything (with or
    /// without `dry_run`).
    pub read_data: bool,
    /// Record this node id in the restored directory (restore onto another node).
    pub node_id: Option<String>,
    /// `Some(1)`: write a data directory the previous release (WAL format 1) opens
    /// (`restore --format-version 1`, rollback after a failed upgrade).
    pub format_version: Option<u32>,
    pub parallelism: usize,
    /// Groups, measures, tags, time range and shard count to restore (default: the whole
    /// snapshot as it is).
    pub filter: RestoreFilter,
    /// Restore everything intact around damaged parts and WAL segments, and report what was
    /// left out ([`RestoreReport::skipped`]) instead of failing.
    pub skip_damaged: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestorePlan {
    pub snapshot: String,
    pub target: PathBuf,
    pub staging: PathBuf,
    /// Where files are downloaded first (kept by a killed restore for the next run).
    pub fetch_dir: PathBuf,
    /// Files to fetch (all of the snapshot's, or what a filter needs) and their size.
    pub files: usize,
    pub objects: usize,
    pub bytes: u64,
    pub stored_bytes: u64,
    /// Size of the whole snapshot (what a full restore fetches).
    pub snapshot_bytes: u64,
    /// Set for a fine-grained or re-sharding restore.
    pub selective: Option<SelectivePlan>,
    /// The files to fetch (listed by a dry run).
    #[serde(skip)]
    pub fetch: Vec<FileEntry>,
    /// Whether the target is a data directory (it will be kept as `rollback`).
    pub target_in_use: bool,
    /// `DIR.pre-restore-<UTC time>` when the target holds data (the swap picks the name).
    pub rollback: Option<PathBuf>,
    /// `restore --at`: archived WAL replayed on top of the snapshot (`archive::pitr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub point_in_time: Option<crate::archive::pitr::PitrPlan>,
    #[serde(skip)]
    pub manifest: Manifest,
}

/// Finishes a restore swap a crash interrupted (what opening the engine on `target` does
/// first). Returns what the finished swap left, if there was one.
pub fn recover(target: &Path) -> Result<Option<SwapOutcome>> {
    let done = backup_api::recover(target)?;
    if done.is_some() {
        // The interrupted restore is complete now; what it fetched is of no use any more.
        fetch::remove_all_for(target);
    }
    Ok(done)
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
    let (selective, fetch) = if opts.filter.is_whole() {
        (None, manifest.files.clone())
    } else {
        let (p, files) = select::select(&manifest, &opts.filter)?;
        (Some(p), files)
    };
    let mut objects: HashMap<&str, u64> = HashMap::new();
    for f in &fetch {
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
    let fetch_dir = fetch::fetch_path(target, &id).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "data directory {} must end in a directory name",
            target.display()
        ))
    })?;
    Ok(RestorePlan {
        snapshot: id.clone(),
        target: target.to_path_buf(),
        staging,
        fetch_dir,
        files: fetch.len(),
        objects: objects.len(),
        bytes: fetch.iter().map(|f| f.size).sum(),
        stored_bytes: objects.values().sum(),
        snapshot_bytes: manifest.files.iter().map(|f| f.size).sum(),
        selective,
        target_in_use: in_use,
        rollback,
        fetch,
        point_in_time: None,
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
    check_objects(repo, plan, read_data, false, progress)
        .await
        .map(|_| ())
}

/// [`verify_plan`]; with `skip`, damaged objects are returned (with what is wrong) instead of
/// failing.
async fn check_objects(
    repo: &Repository,
    plan: &RestorePlan,
    read_data: bool,
    skip: bool,
    progress: &Progress,
) -> Result<Vec<(FileEntry, String)>> {
    let mut found = Vec::new();
    let listed = repo.list_objects().await?;
    progress.start("verifying", plan.files as u64, plan.bytes);
    for f in &plan.fetch {
        let damaged = |detail: String| Error::Corrupt {
            name: crate::repo::object_path(&f.object).to_string(),
            detail: format!(
                "{detail}; needed for {} of snapshot {}: {}",
                f.path,
                plan.snapshot,
                plan.manifest.affected_by(&f.path)
            ),
        };
        let wrong = match listed.get(&f.object) {
            None => Some("object is missing".to_string()),
            Some(o) if o.size != f.stored_size => Some(format!(
                "object has {} bytes, the manifest says {}",
                o.size, f.stored_size
            )),
            Some(_) => None,
        };
        if let Some(w) = wrong {
            if !skip {
                return Err(damaged(w));
            }
            found.push((f.clone(), w));
            continue;
        }
        if read_data {
            let digest = parse_digest(&f.digest)?;
            if let Err(e) = repo
                .download(&f.object, f.size, &digest, None, Path::new(&f.path))
                .await
            {
                match e {
                    Error::Corrupt { detail, .. } if skip => {
                        found.push((f.clone(), detail));
                        continue;
                    }
                    Error::Corrupt { detail, .. } => return Err(damaged(detail)),
                    e => return Err(e),
                }
            }
        }
        progress.file_done(f.size);
    }
    Ok(found)
}

pub fn parse_digest(s: &str) -> Result<[u8; 32]> {
    hex::decode(s)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| Error::InvalidArgument(format!("bad digest {s}")))
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
    /// What was reused from an interrupted run and what was downloaded.
    pub fetch: FetchStats,
    /// What a selective restore wrote.
    pub restored: Option<CopyStats>,
    /// What `skip_damaged` left out (empty otherwise).
    pub skipped: Vec<Skipped>,
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
    let damaged = check_objects(&repo, plan, opts.read_data, opts.skip_damaged, &progress).await?;
    let report = RestoreReport {
        snapshot: plan.snapshot.clone(),
        target: plan.target.clone(),
        rollback: None,
        files: plan.files,
        bytes: plan.bytes,
        data_verified: opts.read_data,
        fetch: FetchStats::default(),
        restored: None,
        skipped: Vec::new(),
    };
    if opts.dry_run {
        return Ok(RestoreReport {
            rollback: plan.rollback.clone(),
            skipped: damage::classify(&plan.manifest, &damaged)?.skipped,
            ..report
        });
    }
    // The engine hands out the staging directory, locked until the swap; dropped on any
    // failure below, it removes itself: the target is never touched.
    let (target, id) = (plan.target.clone(), plan.snapshot.clone());
    let staged = blocking(move || StagedDir::create(&target, &id)).await??;
    match stage_and_swap(repo, plan, opts, progress, staged, damaged).await {
        Ok((swapped, fetched, restored, skipped)) => {
            fetch::remove_all_for(&plan.target);
            Ok(RestoreReport {
                rollback: swapped.rollback,
                fetch: fetched,
                restored,
                skipped,
                ..report
            })
        }
        Err(e) => {
            // A failed restore leaves nothing behind; only a killed one leaves its fetch
            // directory for the next run.
            fetch::remove(&plan.fetch_dir);
            Err(e)
        }
    }
}

/// Fetches, stages (a copy, or the rewrite of a selection), checks, prepares and swaps.
async fn stage_and_swap(
    repo: Arc<Repository>,
    plan: &RestorePlan,
    opts: &RestoreOptions,
    progress: Arc<Progress>,
    staged: StagedDir,
    mut damaged: Vec<(FileEntry, String)>,
) -> Result<(SwapOutcome, FetchStats, Option<CopyStats>, Vec<Skipped>)> {
    let known: std::collections::HashSet<&str> =
        damaged.iter().map(|(f, _)| f.path.as_str()).collect();
    let wanted: Vec<FileEntry> = plan
        .fetch
        .iter()
        .filter(|f| !known.contains(f.path.as_str()))
        .cloned()
        .collect();
    let (fetched, more) = fetch::fetch(
        repo.clone(),
        plan,
        &wanted,
        opts.parallelism,
        opts.skip_damaged,
        progress.clone(),
    )
    .await?;
    damaged.extend(more);
    // Around damage, the intact parts are rewritten like a selection of everything.
    let mut skipped = Vec::new();
    let mut selective = plan.selective.clone();
    if !damaged.is_empty() {
        let mut d = damage::classify(&plan.manifest, &damaged)?;
        damage::settle(&plan.fetch_dir, &mut d);
        let mut sel = match selective {
            Some(s) => s,
            None => select::select(&plan.manifest, &RestoreFilter::default())?.0,
        };
        sel.keep
            .retain(|k| !d.parts.contains(k.to_string_lossy().as_ref()));
        selective = Some(sel);
        skipped = d.skipped;
    }
    let (staged, restored) = match &selective {
        None => {
            let (dir, id, files) = (
                plan.fetch_dir.clone(),
                plan.snapshot.clone(),
                plan.fetch.clone(),
            );
            let (staged, linked) = blocking(move || {
                let r = fetch::link_into(&dir, staged.path(), &id, &files);
                (staged, r)
            })
            .await?;
            linked?;
            progress.set_phase("checking the restored files");
            // Every file was checked against its digest as it was fetched: the check reads
            // metadata and structure, and hashes no part file a second time.
            let verified = plan
                .fetch
                .iter()
                .map(|f| Ok((PathBuf::from(&f.path), parse_digest(&f.digest)?)))
                .collect::<Result<std::collections::HashMap<_, _>>>()?;
            let (staged, found) = blocking(move || {
                let r = staged.check_verified(&verified);
                (staged, r)
            })
            .await?;
            refuse_damage(plan, &found?)?;
            if let Some(p) = &plan.point_in_time {
                progress.set_phase("adding archived WAL");
                crate::archive::pitr::stage(&repo, p, staged.path()).await?;
            }
            (staged, None)
        }
        Some(_) if plan.point_in_time.is_some() => {
            return Err(Error::Refused(
                "restore --at cannot be combined with a fine-grained selection in this build; restore the point in time, then copy what you need".into(),
            ));
        }
        Some(sel) => {
            progress.set_phase("rewriting the selection");
            let (dir, sel) = (plan.fetch_dir.clone(), sel.clone());
            let p = progress.clone();
            let (staged, stats) = blocking(move || {
                let r = select::rewrite(&dir, staged.path(), &sel, &mut |n| {
                    p.bytes_done.store(n, std::sync::atomic::Ordering::Relaxed)
                });
                (staged, r)
            })
            .await?;
            let stats = stats?;
            if stats.points == 0 {
                let filter = sel_filter(plan);
                return Err(select::nothing_matches(&plan.manifest, &filter));
            }
            (staged, Some(stats))
        }
    };
    progress.set_phase("replaying WAL and rebuilding the index");
    let node = opts.node_id.clone();
    let (staged, prepared) = blocking(move || {
        let r = staged.prepare(node.as_deref());
        (staged, r)
    })
    .await?;
    prepared?;
    let staged = crate::archive::compat::convert(staged, opts.format_version).await?;
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
    Ok((swapped, fetched, restored, skipped))
}

fn sel_filter(plan: &RestorePlan) -> RestoreFilter {
    plan.selective
        .as_ref()
        .map(|s| s.filter.clone())
        .unwrap_or_default()
}
