//! `POST /api/v1/repository/restore-plan`: the dry run of `strata restore --dry-run`, planned
//! by the backup crate (`restore::plan_restore`, or `archive::pitr::plan_restore_at` for a
//! point in time) and checked (`restore::verify_plan`: every object present with its size).
//! Nothing is written. The target is a data directory on the server's host (an offline
//! restore: the operator runs the command the UI shows); it is inspected, not touched.

use std::path::PathBuf;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use strata_backup::Progress;
use strata_backup::restore::{RestoreFilter, RestoreOptions, RestorePlan};

use super::jobs::body;
use super::{RepoApi, backup_error};
use crate::http::error::ApiError;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanRequest {
    /// Snapshot id, unique prefix or `latest` (default); not with `at`.
    pub snapshot: Option<String>,
    /// Point in time (RFC 3339).
    pub at: Option<String>,
    /// Offline restore into this data directory (absolute path on the server's host).
    pub data_dir: Option<PathBuf>,
    /// Online restore into a new group of this server.
    pub into_group: Option<String>,
    pub groups: Vec<String>,
    pub measures: Vec<String>,
    /// `K=V` tag equalities.
    pub tags: Vec<String>,
    /// Points at or after / before these times (RFC 3339).
    pub from: Option<String>,
    pub to: Option<String>,
    pub shards: Option<u32>,
}

fn time(key: &str, v: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(v.trim())
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{key} '{v}': expected an RFC 3339 time such as 2026-01-02T03:04:05Z"
            ))
        })
}

impl PlanRequest {
    fn filter(&self) -> Result<RestoreFilter, ApiError> {
        let tags = self
            .tags
            .iter()
            .map(|t| match t.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(ApiError::bad_request(format!(
                    "tag '{t}': expected KEY=VALUE"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let f = RestoreFilter {
            groups: self.groups.clone(),
            measures: self.measures.clone(),
            tags,
            from: self.from.as_deref().map(|v| time("from", v)).transpose()?,
            to: self.to.as_deref().map(|v| time("to", v)).transpose()?,
            shards: self.shards,
        };
        f.validate().map_err(backup_error)?;
        Ok(f)
    }

    fn target(&self) -> Result<PathBuf, ApiError> {
        if self.into_group.is_some() {
            return Err(ApiError::bad_request(
                "an online restore into a new group is not available in this build yet; plan an offline restore (data_dir)",
            ));
        }
        let dir = self.data_dir.clone().ok_or_else(|| {
            ApiError::bad_request("give data_dir: the data directory to restore into")
        })?;
        if !dir.is_absolute() {
            return Err(ApiError::bad_request(format!(
                "data_dir {}: give an absolute path on the server's host",
                dir.display()
            )));
        }
        Ok(dir)
    }
}

/// What the restore would change, in words.
fn changes(p: &RestorePlan) -> Vec<String> {
    let mut out = Vec::new();
    if p.target_in_use {
        out.push(format!(
            "{} holds a data directory: it would be replaced in one rename and kept as {} for rollback (the command needs --force)",
            p.target.display(),
            p.rollback
                .as_ref()
                .map(|r| r.display().to_string())
                .unwrap_or_default()
        ));
    } else {
        out.push(format!(
            "{} is empty or absent: the restored data directory would be created there",
            p.target.display()
        ));
    }
    out.push(format!(
        "{} objects read from the repository, {} files written through the staging directory {}",
        p.objects,
        p.files,
        p.staging.display()
    ));
    if let Some(s) = &p.selective {
        let groups: Vec<String> = s
            .groups
            .iter()
            .map(|(g, ms)| format!("{g} [{}]", ms.join(", ")))
            .collect();
        out.push(format!(
            "only {} of the snapshot's {} parts are fetched; groups restored: {}",
            s.parts_selected,
            s.parts_total,
            groups.join("; ")
        ));
    }
    if let Some(t) = &p.point_in_time {
        out.push(format!(
            "then {} archived batches from {} archive objects are replayed up to {}",
            t.batches,
            t.objects.len(),
            t.last_commit.as_deref().unwrap_or(&t.at)
        ));
    }
    out.push("indexes are rebuilt after the swap (derived data)".into());
    out
}

pub async fn plan(State(api): State<RepoApi>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let req: PlanRequest = body(&bytes, "restore plan")?;
    if req.at.is_some() && req.snapshot.as_deref().is_some_and(|s| s != "latest") {
        return Err(ApiError::bad_request("give snapshot or at, not both"));
    }
    let target = req.target()?;
    let opts = RestoreOptions {
        // The plan says whether the target would be replaced instead of refusing it.
        force: true,
        dry_run: true,
        filter: req.filter()?,
        ..Default::default()
    };
    let repo = api.repo().await?;
    let plan = match &req.at {
        Some(at) => {
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
            strata_backup::archive::pitr::plan_restore_at(
                &repo,
                time("at", at)?,
                now,
                None,
                &target,
                &opts,
            )
            .await
        }
        None => {
            let spec = req.snapshot.as_deref().unwrap_or("latest");
            strata_backup::restore::plan_restore(&repo, spec, &target, &opts).await
        }
    }
    .map_err(backup_error)?;
    strata_backup::restore::verify_plan(&repo, &plan, false, &Progress::default())
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the restore would fail: {e}"),
            )
        })?;
    let mut v = serde_json::to_value(&plan).map_err(ApiError::internal)?;
    v["changes"] = json!(changes(&plan));
    v["verified"] = json!("every object present with its recorded size");
    v["repository"] = json!(repo.url());
    Ok(Json(v))
}
