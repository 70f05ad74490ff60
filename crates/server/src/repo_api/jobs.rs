//! Repository work run as server jobs (tracked in `GET /api/v1/jobs` with progress, cancelled
//! with `POST /api/v1/jobs/{id}/cancel`):
//! `POST /api/v1/repository/snapshots/{id}/verify` (`strata verify ID [--read-data]`) and
//! `POST /api/v1/repository/prune` (`strata prune …`), which answer 202 with the job id.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use strata_backup::Repository;

use super::prune::PolicyRequest;
use super::{RepoApi, backup_error};
use crate::http::error::ApiError;
use crate::jobs::{JobHandle, JobKind, JobState};

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct VerifyRequest {
    /// Download, decrypt and check every object's digest (`--read-data`).
    read_data: bool,
}

/// An optional JSON body (empty: defaults), whatever its `Content-Type`.
pub(super) fn body<T: Default + serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("{what} request is not valid JSON: {e}")))
}

fn accepted(id: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::ACCEPTED,
        Json(json!({"job": id, "status": format!("/api/v1/jobs/{id}")})),
    )
}

fn begin(api: &RepoApi, kind: JobKind, key: &str) -> Result<JobHandle, ApiError> {
    api.backups
        .jobs
        .begin(kind, key, None, "api")
        .map_err(|busy| ApiError::new(StatusCode::CONFLICT, busy))
}

/// Runs `work` as the job `h`, stopping when it is cancelled; `done` records a success.
fn spawn<T, F>(api: &RepoApi, h: JobHandle, work: F, done: fn(&mut crate::jobs::JobRecord, T))
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, String>> + Send + 'static,
{
    let jobs = api.backups.jobs.clone();
    tokio::spawn(async move {
        let result = tokio::select! {
            r = work => r,
            () = h.cancel.cancelled() => Err("cancelled".to_string()),
        };
        jobs.finish(h, |r| match result {
            Ok(v) => done(r, v),
            Err(e) => {
                r.state = JobState::Failed;
                r.error = Some(e);
            }
        });
    });
}

pub async fn verify(
    State(api): State<RepoApi>,
    Path(spec): Path<String>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: VerifyRequest = body(&bytes, "verify")?;
    let repo = api.repo().await?;
    let id = repo.resolve(&spec).await.map_err(backup_error)?;
    let h = begin(&api, JobKind::Verify, &format!("verify:{id}"))?;
    let job = h.id.clone();
    api.backups
        .jobs
        .update(&h, |r| r.snapshot = Some(id.clone()));
    let progress = h.progress.clone();
    let work = async move {
        let report = strata_backup::verify::verify(&repo, Some(vec![id]), req.read_data, &progress)
            .await
            .map_err(|e| e.to_string())?;
        Ok((report, req.read_data))
    };
    spawn(&api, h, work, |r, (report, read_data)| {
        r.bytes_read = report.bytes_read;
        if !report.ok() {
            r.state = JobState::Failed;
            r.error = Some(format!(
                "{} damaged objects: {}",
                report.damage.len(),
                report
                    .damage
                    .iter()
                    .map(|d| format!("{} ({})", d.object, d.problem))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        r.detail = Some(json!({"read_data": read_data, "report": report}));
    });
    Ok(accepted(&job))
}

pub async fn prune(
    State(api): State<RepoApi>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: PolicyRequest = body(&bytes, "prune")?;
    let (policy, grace, scope) = req.resolve(&api)?;
    let repo: Arc<Repository> = api.repo().await?;
    // Planned here, so a bad policy is refused before any job starts; executed as the job
    // (a snapshot pinned in between stays: `prune` re-reads the pins).
    let plan = strata_backup::prune::plan_prune_scoped(&repo, &policy, grace, &scope)
        .await
        .map_err(backup_error)?;
    // The key the schedules' retention uses: one prune of a repository at a time.
    let h = begin(&api, JobKind::Prune, &format!("prune:{}", repo.url()))?;
    let job = h.id.clone();
    let progress = h.progress.clone();
    let work = async move {
        progress.set_phase("removing snapshots and collecting garbage");
        let kept = plan.decisions.iter().filter(|d| d.keep).count();
        let report = strata_backup::prune::prune(&repo, &plan)
            .await
            .map_err(|e| e.to_string())?;
        progress.set_phase("done");
        Ok((kept, report))
    };
    spawn(&api, h, work, |r, (kept, report)| {
        r.detail = Some(json!({"kept": kept, "report": report}));
    });
    Ok(accepted(&job))
}
