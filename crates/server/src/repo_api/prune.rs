//! `POST /api/v1/repository/prune-preview`: what `strata prune --dry-run` with a policy would
//! remove and keep, and why (a schedule's configured policy, or the keys given).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use strata_backup::prune::{RetentionPolicy, Scope, plan_prune_scoped};

use super::jobs::body;
use super::{RepoApi, backup_error};
use crate::http::error::ApiError;

/// A retention policy as the API takes it: the keys of `strata prune`, optionally scoped to
/// one schedule's snapshots. With `schedule` and no key, that schedule's configured policy.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyRequest {
    pub schedule: Option<String>,
    pub keep_last: Option<usize>,
    pub keep_hourly: Option<usize>,
    pub keep_daily: Option<usize>,
    pub keep_weekly: Option<usize>,
    pub keep_monthly: Option<usize>,
    pub keep_within: Option<String>,
    /// How long unreferenced objects wait before deletion (default `1h`).
    pub grace: Option<String>,
    pub allow_empty: bool,
}

fn duration(key: &str, v: &str) -> Result<Duration, ApiError> {
    strata_engine::duration::parse(v)
        .map_err(|e| ApiError::bad_request(format!("{key} '{v}': {e}")))
}

impl PolicyRequest {
    pub fn resolve(&self, api: &RepoApi) -> Result<(RetentionPolicy, Duration, Scope), ApiError> {
        let mut policy = RetentionPolicy {
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_within: self
                .keep_within
                .as_deref()
                .filter(|v| !v.trim().is_empty())
                .map(|v| duration("keep_within", v))
                .transpose()?,
            allow_empty: self.allow_empty,
        };
        let mut grace = match self.grace.as_deref().filter(|v| !v.trim().is_empty()) {
            Some(g) => Some(duration("grace", g)?),
            None => None,
        };
        if let Some(name) = &self.schedule {
            let s = api
                .local_schedules()
                .find(|s| s.name() == name)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "schedule {name} does not back up to this server's repository"
                    ))
                })?;
            if policy.is_empty() {
                let (p, g) = s.checked.retention.clone().ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "schedule {name} has no retention; give keep_* keys"
                    ))
                })?;
                policy = RetentionPolicy {
                    allow_empty: self.allow_empty,
                    ..p
                };
                grace = grace.or(Some(g));
            }
        }
        let scope = Scope {
            schedule: self.schedule.clone(),
        };
        Ok((policy, grace.unwrap_or(Duration::from_secs(3600)), scope))
    }
}

pub async fn preview(State(api): State<RepoApi>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let req: PolicyRequest = body(&bytes, "prune preview")?;
    let (policy, grace, scope) = req.resolve(&api)?;
    let repo = api.repo().await?;
    let plan = plan_prune_scoped(&repo, &policy, grace, &scope)
        .await
        .map_err(backup_error)?;
    let mut v = serde_json::to_value(&plan).map_err(ApiError::internal)?;
    v["repository"] = json!(repo.url());
    v["schedule"] = json!(req.schedule);
    Ok(Json(v))
}
