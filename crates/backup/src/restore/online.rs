//! Online restore: bring a selection of a snapshot into a running engine without stopping it
//! (`POST /api/v1/restores`, `strata restore --server`).
//!
//! Plan ([`plan_online`]): the selection is resolved against the snapshot as for a
//! fine-grained restore ([`super::select`]); each restored group gets its name in the server
//! (its own, or `into_group`) and an action: `create` (a new name), `restore` (a group that
//! no longer exists comes back), `replace` (an existing group swapped whole, only with
//! `replace`). Refused with one line and nothing changed: `into_group` naming an existing
//! group or with more than one group selected, an existing group without `replace`.
//!
//! Execute ([`restore_online`]): verify the objects, fetch them into the fetch directory
//! beside the server's data directory (kept by a killed server for the next run, as for any
//! restore), rewrite the selection into a staging directory the engine hands out inside its
//! data directory (`backup_api::adopt`), then ask the engine to adopt the groups in one step.
//! Nothing is visible before that step; a failure or a cancellation before it discards the
//! staging directory; the engine makes the step itself crash-safe.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use strata_engine::backup_api::adopt::{self, AdoptGroup, Adopted};
use strata_engine::backup_api::{self, CopyStats, Engine, Selection};

use super::fetch::{self, FetchStats};
use super::select::{self, RestoreFilter, SelectivePlan};
use super::{RestorePlan, blocking, resolve_snapshot};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::Repository;

/// What to bring back, and where.
#[derive(Debug, Clone, Default)]
pub struct OnlineRequest {
    /// Snapshot id, unique prefix or `latest`.
    pub snapshot: String,
    pub filter: RestoreFilter,
    /// Restore the (single) selected group under this new name.
    pub into_group: Option<String>,
    /// Swap existing groups whole for their restored versions.
    pub replace: bool,
    /// Files downloaded in parallel.
    pub parallelism: usize,
}

/// What happens to one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnlineGroup {
    /// The group in the snapshot.
    pub source: String,
    /// Its name in the server.
    pub target: String,
    pub measures: Vec<String>,
    /// `create`, `restore` (it no longer exists) or `replace`.
    pub action: &'static str,
    /// Shard count of the restored group (`None`: the snapshot's).
    pub shards: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OnlinePlan {
    pub snapshot: String,
    pub groups: Vec<OnlineGroup>,
    pub filter: RestoreFilter,
    /// Files and bytes to fetch, and the whole snapshot's size.
    pub files: usize,
    pub objects: usize,
    pub bytes: u64,
    pub stored_bytes: u64,
    pub snapshot_bytes: u64,
    pub parts_selected: usize,
    pub parts_total: usize,
    #[serde(skip)]
    restore: RestorePlan,
}

/// What an online restore did.
#[derive(Debug, Clone, Serialize)]
pub struct OnlineReport {
    pub snapshot: String,
    pub groups: Vec<OnlineGroup>,
    pub fetch: FetchStats,
    pub restored: CopyStats,
    pub adopted: Adopted,
}

/// Resolves the request against the snapshot and the engine's catalog (see the module docs).
pub async fn plan_online(
    repo: &Repository,
    engine: &Engine,
    req: &OnlineRequest,
) -> Result<OnlinePlan> {
    req.filter.validate()?;
    if let Some(n) = &req.into_group {
        adopt::validate_group_name(n)
            .map_err(|e| Error::InvalidArgument(format!("--into-group {n:?}: {e}")))?;
    }
    let id = resolve_snapshot(repo, &req.snapshot).await?;
    let manifest = repo.load_manifest(&id).await?;
    let (mut sel, files) = select::select(&manifest, &req.filter)?;
    if let Some(n) = &req.into_group
        && sel.groups.len() != 1
    {
        let names: Vec<&str> = sel.groups.iter().map(|g| g.0.as_str()).collect();
        return Err(Error::InvalidArgument(format!(
            "--into-group {n} takes one group; the selection holds {} (narrow it with --group)",
            names.join(", ")
        )));
    }
    let live = engine.catalog();
    let mut groups = Vec::new();
    for g in &mut sel.selection.groups {
        let target = req.into_group.clone().unwrap_or_else(|| g.name.clone());
        let existing = live.groups.iter().find(|c| c.name == target);
        if existing.is_some() && req.into_group.is_some() {
            return Err(Error::Refused(format!(
                "--into-group {target}: a group of that name exists in the server; pick a new name"
            )));
        }
        if existing.is_some() && !req.replace {
            return Err(Error::Refused(format!(
                "group '{target}' exists in the server: restore it under another name (--into-group NEW) or replace it whole (--replace)"
            )));
        }
        // A replaced group keeps the server's shard count unless --shards says otherwise.
        let shards = req
            .filter
            .shards
            .or_else(|| existing.map(|c| c.settings.shards));
        g.target = target.clone();
        groups.push(OnlineGroup {
            source: g.name.clone(),
            target,
            measures: g.measures.clone(),
            action: match existing {
                Some(_) => "replace",
                None if req.into_group.is_some() => "create",
                None => "restore",
            },
            shards,
        });
    }
    let mut objects = std::collections::HashMap::new();
    for f in &files {
        objects.insert(f.object.clone(), f.stored_size);
    }
    let target = engine.data_dir().to_path_buf();
    let fetch_dir = fetch::fetch_path(&target, &id).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "the server's data directory {} must end in a directory name",
            target.display()
        ))
    })?;
    let restore = RestorePlan {
        snapshot: id.clone(),
        target: target.clone(),
        staging: target.join(adopt::STAGING_DIR),
        fetch_dir,
        files: files.len(),
        objects: objects.len(),
        bytes: files.iter().map(|f| f.size).sum(),
        stored_bytes: objects.values().sum(),
        snapshot_bytes: manifest.files.iter().map(|f| f.size).sum(),
        selective: Some(sel.clone()),
        fetch: files,
        target_in_use: true,
        rollback: None,
        point_in_time: None,
        manifest,
    };
    Ok(OnlinePlan {
        snapshot: id,
        groups,
        filter: req.filter.clone(),
        files: restore.files,
        objects: restore.objects,
        bytes: restore.bytes,
        stored_bytes: restore.stored_bytes,
        snapshot_bytes: restore.snapshot_bytes,
        parts_selected: sel.parts_selected,
        parts_total: sel.parts_total,
        restore,
    })
}

/// Runs `plan` into `engine` as restore `id` (a staging directory name: letters, digits,
/// `-`, `_`). `cancel` is checked between phases and while downloading; once the engine is
/// adopting, the restore finishes.
pub async fn restore_online(
    repo: Arc<Repository>,
    engine: Arc<Engine>,
    plan: &OnlinePlan,
    id: &str,
    parallelism: usize,
    progress: Arc<Progress>,
    cancel: Arc<AtomicBool>,
) -> Result<OnlineReport> {
    let rp = &plan.restore;
    super::verify_plan(&repo, rp, false, &progress).await?;
    let cancelled = || -> Result<()> {
        if cancel.load(Ordering::SeqCst) {
            return Err(cancelled_error());
        }
        Ok(())
    };
    cancelled()?;
    let (e, sid) = (engine.clone(), id.to_string());
    let staged = blocking(move || adopt::create_staging(&e, &sid)).await??;
    let guard = Staging {
        engine: engine.clone(),
        dir: Some(staged.clone()),
    };
    // A cancelled download stops at once; what it fetched stays for the next run.
    let (fetched, _) = tokio::select! {
        r = fetch::fetch(repo.clone(), rp, &rp.fetch, parallelism, false, progress.clone()) => {
            r.inspect_err(|_| fetch::remove(&rp.fetch_dir))?
        }
        () = until(&cancel) => return Err(cancelled_error()),
    };
    cancelled()?;
    progress.set_phase("rewriting the selection");
    let sel = rp
        .selective
        .clone()
        .ok_or_else(|| Error::Task("no selection".into()))?;
    let (src, dst, groups) = (rp.fetch_dir.clone(), staged.clone(), plan.groups.clone());
    let p = progress.clone();
    let restored = blocking(move || rewrite(&src, &dst, &sel, &groups, &p)).await?;
    let restored = match restored {
        Ok(r) => r,
        Err(e) => {
            fetch::remove(&rp.fetch_dir);
            return Err(e);
        }
    };
    if restored.points == 0 {
        fetch::remove(&rp.fetch_dir);
        return Err(select::nothing_matches(&rp.manifest, &plan.filter));
    }
    cancelled()?;
    progress.set_phase("adopting");
    let adopt_groups: Vec<AdoptGroup> = plan
        .groups
        .iter()
        .map(|g| AdoptGroup {
            name: g.target.clone(),
            replace: g.action == "replace",
        })
        .collect();
    let (e, s) = (engine.clone(), staged.clone());
    let adopted = blocking(move || adopt::adopt(&e, &s, &adopt_groups)).await?;
    fetch::remove(&rp.fetch_dir);
    let adopted = adopted.map_err(|e| match e {
        backup_api::Error::Refused(m) => Error::Refused(m),
        e => e.into(),
    })?;
    guard.adopted();
    progress.set_phase("done");
    Ok(OnlineReport {
        snapshot: plan.snapshot.clone(),
        groups: plan.groups.clone(),
        fetch: fetched,
        restored,
        adopted,
    })
}

fn cancelled_error() -> Error {
    Error::Refused("the restore was cancelled; nothing was changed".into())
}

/// Resolves once `flag` is set.
async fn until(flag: &AtomicBool) {
    while !flag.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Copies the selection out of the fetched subset into the staging directory, one group at
/// a time (each with its own shard count), then closes the staging engine.
fn rewrite(
    fetched: &Path,
    staged: &Path,
    sel: &SelectivePlan,
    groups: &[OnlineGroup],
    progress: &Progress,
) -> Result<CopyStats> {
    backup_api::keep_only_parts(fetched, &sel.keep)?;
    let src = Engine::open_read_only(fetched)?;
    let dst = adopt::open_staging(staged)?;
    let mut total = CopyStats::default();
    for g in &sel.selection.groups {
        let shards = groups
            .iter()
            .find(|o| o.source == g.name)
            .and_then(|o| o.shards);
        let one = Selection {
            groups: vec![g.clone()],
            shards,
            ..sel.selection.clone()
        };
        let before = total.points;
        let s = backup_api::copy_selection(&src, &dst, &one, &mut |n| {
            progress.bytes_done.store(before + n, Ordering::Relaxed)
        })?;
        total.groups += s.groups;
        total.measures += s.measures;
        total.series += s.series;
        total.points += s.points;
    }
    dst.close()?;
    Ok(total)
}

/// Discards the staging directory unless it was adopted.
struct Staging {
    engine: Arc<Engine>,
    dir: Option<PathBuf>,
}

impl Staging {
    fn adopted(mut self) {
        self.dir = None;
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(d) = self.dir.take()
            && let Err(e) = adopt::discard_staging(&self.engine, &d)
        {
            tracing::warn!(dir = %d.display(), error = %e, "cannot remove a restore's staging directory");
        }
    }
}
