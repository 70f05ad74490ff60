//! `GET /api/v1/repository/snapshots`: the repository's snapshots, newest first, filtered and
//! paginated, each with its logical size, the stored bytes only it references (what deleting
//! it would free) and why retention keeps it; `PUT|DELETE …/{id}/pin`; `DELETE …/{id}`.

use std::collections::{BTreeSet, HashMap, HashSet};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use strata_backup::Manifest;
use strata_backup::prune::{Scope, apply_policy};

use super::{RepoApi, backup_error};
use crate::http::error::ApiError;

/// Query of the snapshot list.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListQuery {
    pub node: Option<String>,
    pub schedule: Option<String>,
    pub group: Option<String>,
    pub offset: usize,
    /// At most this many (default 50, at most 1000).
    pub limit: Option<usize>,
}

/// One row of the list.
#[derive(Debug, Serialize)]
pub struct SnapshotRow {
    pub id: String,
    pub time: DateTime<Utc>,
    pub node_id: String,
    pub kind: strata_backup::manifest::BackupKind,
    pub parent: Option<String>,
    pub schedule: Option<String>,
    /// Groups the snapshot holds (its catalog's, or those it was restricted to).
    pub groups: Vec<String>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub files: u64,
    /// Plaintext bytes of its files (what a full restore writes).
    pub bytes: u64,
    /// Stored bytes of its distinct objects.
    pub stored_bytes: u64,
    /// Stored bytes of the objects no other snapshot references.
    pub unique_bytes: u64,
    pub pinned: bool,
    /// Why retention keeps it ("last #1", "daily #3", "pinned"); empty: the next prune of its
    /// policy removes it (when `policy` is set).
    pub keep: Vec<String>,
    /// The retention that decides about it: `schedule NAME`; absent: no policy covers it
    /// (kept until pruned by hand).
    pub policy: Option<String>,
}

fn groups_of(m: &Manifest) -> Vec<String> {
    match &m.groups {
        Some(g) => g.clone(),
        None => m.catalog.groups.iter().map(|g| g.name.clone()).collect(),
    }
}

/// Stored bytes per snapshot: (all distinct objects, objects referenced by it alone).
pub(super) fn sizes(ms: &[Manifest]) -> HashMap<&str, (u64, u64)> {
    let mut users: HashMap<&str, usize> = HashMap::new();
    for m in ms {
        let distinct: BTreeSet<&str> = m.files.iter().map(|f| f.object.as_str()).collect();
        for o in distinct {
            *users.entry(o).or_default() += 1;
        }
    }
    ms.iter()
        .map(|m| {
            let mut seen = BTreeSet::new();
            let (mut all, mut unique) = (0, 0);
            for f in &m.files {
                if seen.insert(f.object.as_str()) {
                    all += f.stored_size;
                    if users.get(f.object.as_str()) == Some(&1) {
                        unique += f.stored_size;
                    }
                }
            }
            (m.id.as_str(), (all, unique))
        })
        .collect()
}

/// Keep reasons by snapshot id, with the policy that gives them.
pub(super) type Reasons = HashMap<String, (String, Vec<String>)>;

/// Keep reasons of every snapshot some schedule's retention covers, by id, with the policy.
pub(super) fn reasons(api: &RepoApi, ms: &[Manifest]) -> Reasons {
    let mut out = HashMap::new();
    for s in api.local_schedules() {
        let Some((policy, _)) = &s.checked.retention else {
            continue;
        };
        let scope = Scope {
            schedule: Some(s.name().to_string()),
        };
        let snaps: Vec<(String, DateTime<Utc>)> = ms
            .iter()
            .filter(|m| scope.schedule.as_ref() == m.schedule.as_ref())
            .map(|m| (m.id.clone(), m.recorded_time()))
            .collect();
        for d in apply_policy(&snaps, policy) {
            out.insert(d.id, (format!("schedule {}", s.name()), d.reasons));
        }
    }
    out
}

/// One snapshot as the list (and the detail) shows it.
pub(super) fn row(
    m: &Manifest,
    sizes: &HashMap<&str, (u64, u64)>,
    reasons: &Reasons,
    pins: &HashSet<String>,
) -> SnapshotRow {
    let (stored_bytes, unique_bytes) = sizes.get(m.id.as_str()).copied().unwrap_or_default();
    let pinned = pins.contains(&m.id);
    let (policy, mut keep) = match reasons.get(&m.id) {
        Some((p, r)) => (Some(p.clone()), r.clone()),
        None => (None, Vec::new()),
    };
    if pinned {
        keep.push("pinned".into());
    }
    SnapshotRow {
        id: m.id.clone(),
        time: m.recorded_time(),
        node_id: m.node_id.clone(),
        kind: m.kind,
        parent: m.parent.clone(),
        schedule: m.schedule.clone(),
        groups: groups_of(m),
        labels: m.labels.clone(),
        files: m.stats.files,
        bytes: m.stats.bytes,
        stored_bytes,
        unique_bytes,
        pinned,
        keep,
        policy,
    }
}

pub async fn list(
    State(api): State<RepoApi>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let repo = api.repo().await?;
    let (ms, bad) = repo.manifests().await.map_err(backup_error)?;
    let pins = strata_backup::gc::pinned(&repo)
        .await
        .map_err(backup_error)?;
    let sizes = sizes(&ms);
    let reasons = reasons(&api, &ms);
    let nodes: BTreeSet<&str> = ms.iter().map(|m| m.node_id.as_str()).collect();
    let schedules: BTreeSet<&str> = ms.iter().filter_map(|m| m.schedule.as_deref()).collect();
    let all_groups: BTreeSet<String> = ms.iter().flat_map(groups_of).collect();
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let matching: Vec<&Manifest> = ms
        .iter()
        .rev()
        .filter(|m| q.node.as_ref().is_none_or(|n| &m.node_id == n))
        .filter(|m| {
            q.schedule
                .as_ref()
                .is_none_or(|s| m.schedule.as_ref() == Some(s))
        })
        .filter(|m| q.group.as_ref().is_none_or(|g| groups_of(m).contains(g)))
        .collect();
    let rows: Vec<SnapshotRow> = matching
        .iter()
        .skip(q.offset)
        .take(limit)
        .map(|m| row(m, &sizes, &reasons, &pins))
        .collect();
    let damaged: Vec<Value> = bad
        .iter()
        .map(|(id, e)| json!({"id": id, "error": e.to_string()}))
        .collect();
    Ok(Json(json!({
        "repository": repo.url(),
        "total": matching.len(),
        "offset": q.offset,
        "limit": limit,
        "snapshots": rows,
        "damaged": damaged,
        "nodes": nodes,
        "schedules": schedules,
        "groups": all_groups,
    })))
}

pub async fn pin(
    State(api): State<RepoApi>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let repo = api.repo().await?;
    let id = repo.resolve(&id).await.map_err(backup_error)?;
    strata_backup::gc::pin(&repo, &id, "pinned in the web UI")
        .await
        .map_err(backup_error)?;
    Ok(Json(json!({"snapshot": id, "pinned": true})))
}

pub async fn unpin(
    State(api): State<RepoApi>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let repo = api.repo().await?;
    let id = repo.resolve(&id).await.map_err(backup_error)?;
    let was = strata_backup::gc::unpin(&repo, &id)
        .await
        .map_err(backup_error)?;
    Ok(Json(
        json!({"snapshot": id, "pinned": false, "was_pinned": was}),
    ))
}

/// Deletes one snapshot's manifest (`strata forget`); its objects go at the next prune's
/// garbage collection. A pinned snapshot is refused.
pub async fn forget(
    State(api): State<RepoApi>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let repo = api.repo().await?;
    strata_backup::prune::forget(&repo, &id)
        .await
        .map_err(backup_error)?;
    Ok((
        StatusCode::OK,
        Json(json!({"snapshot": id, "deleted": true})),
    ))
}
