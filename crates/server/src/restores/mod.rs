//! Online restores: `POST /api/v1/restores` brings a selection of a backup snapshot into the
//! running server (`strata_backup::restore::online`) as a job in the persisted history
//! (kind `restore`); `GET /api/v1/restores/{id}` is its status with live progress;
//! `DELETE /api/v1/restores/{id}` (or the jobs API's cancel) stops it before its data is
//! adopted (nothing changes then). One online restore runs at a time (409 otherwise).
//!
//! The request is planned before the job starts, so bad input is refused at once with one
//! line and nothing changed: unknown groups or measures (naming what the snapshot holds), a
//! filter that matches nothing, `into_group` naming an existing group, an existing group
//! without `replace`. The repository is the server's (`--repo`, `[repository]`: its password
//! file and credentials apply) unless the request names another URL (password from
//! `STRATA_REPO_PASSWORD`); no password or credential is ever part of a request or answer.

mod request;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use strata_backup::restore::online::{OnlinePlan, plan_online, restore_online};

use crate::backup_jobs::Backups;
use crate::http::error::ApiError;
use crate::jobs::{JobKind, JobState};
pub use request::RestoreRequest;

/// The key online restores share: one at a time.
const KEY: &str = "api-restore";

pub fn routes(backups: Arc<Backups>) -> Router {
    Router::new()
        .route("/api/v1/restores", post(start))
        .route("/api/v1/restores/{id}", get(one).delete(cancel))
        .with_state(backups)
}

fn repo_error(e: strata_backup::Error) -> ApiError {
    use strata_backup::Error as B;
    let status = match &e {
        B::SnapshotNotFound(_) | B::NoRepository(_) | B::AmbiguousSnapshot(_) => {
            StatusCode::NOT_FOUND
        }
        B::InvalidArgument(_) | B::BadUrl { .. } | B::PasswordRequired => StatusCode::BAD_REQUEST,
        B::Refused(_) => StatusCode::CONFLICT,
        B::WrongPassword => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_GATEWAY,
    };
    ApiError::new(status, e)
}

async fn start(
    State(b): State<Arc<Backups>>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = RestoreRequest::parse(&body).map_err(ApiError::bad_request)?;
    let settings = req
        .settings(b.repo.as_ref())
        .map_err(ApiError::bad_request)?;
    if b.jobs.is_running(KEY) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "an online restore is already running",
        ));
    }
    let (repo, _) = b.repository(&settings).await.map_err(repo_error)?;
    let online = req.online();
    let plan = match plan_online(&repo, &b.engine, &online).await {
        Ok(p) => p,
        Err(e) => {
            if !matches!(
                e,
                strata_backup::Error::InvalidArgument(_) | strata_backup::Error::Refused(_)
            ) {
                b.forget(&settings.url).await;
            }
            return Err(repo_error(e));
        }
    };
    if req.dry_run {
        return Ok((StatusCode::OK, Json(json!({"dry_run": true, "plan": plan}))));
    }
    let h = b
        .jobs
        .begin(JobKind::Restore, KEY, None, "api")
        .map_err(|_| ApiError::new(StatusCode::CONFLICT, "an online restore is already running"))?;
    let id = h.id.clone();
    let plan_json = serde_json::to_value(&plan).map_err(ApiError::internal)?;
    b.jobs.update(&h, |r| {
        r.snapshot = Some(plan.snapshot.clone());
        r.detail = Some(json!({"plan": plan_json}));
    });
    let b2 = b.clone();
    let answer = json!({"job": id, "status": format!("/api/v1/restores/{id}"), "plan": plan_json});
    tokio::spawn(async move {
        let result = run(&b2, repo, &plan, &h, online.parallelism).await;
        if result.is_err() {
            b2.forget(&settings.url).await;
        }
        b2.jobs.finish(h, |r| match result {
            Ok(report) => {
                r.bytes_read = report.fetch.downloaded_bytes + report.fetch.reused_bytes;
                r.detail = Some(json!({"plan": plan_json, "result": report}));
                tracing::info!(job = %r.id, groups = ?report.adopted.groups, "online restore finished");
            }
            Err(e) => {
                r.state = JobState::Failed;
                tracing::warn!(job = %r.id, error = %e, "online restore failed");
                r.error = Some(e.to_string());
            }
        });
    });
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

/// Runs the restore; the job's cancellation reaches it through a flag it checks.
async fn run(
    b: &Backups,
    repo: Arc<strata_backup::Repository>,
    plan: &OnlinePlan,
    h: &crate::jobs::JobHandle,
    parallelism: usize,
) -> Result<strata_backup::restore::online::OnlineReport, strata_backup::Error> {
    let flag = Arc::new(AtomicBool::new(false));
    let watch = {
        let (cancel, flag) = (h.cancel.clone(), flag.clone());
        tokio::spawn(async move {
            cancel.cancelled().await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let r = restore_online(
        repo,
        b.engine.clone(),
        plan,
        &h.id,
        parallelism,
        h.progress.clone(),
        flag,
    )
    .await;
    watch.abort();
    r
}

fn restore_job(
    b: &Backups,
    id: &str,
) -> Result<(crate::jobs::JobRecord, Option<Arc<strata_backup::Progress>>), ApiError> {
    match b.jobs.get(id) {
        Some((r, p)) if r.kind == JobKind::Restore => Ok((r, p)),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("restore {id} not found"),
        )),
    }
}

async fn one(
    State(b): State<Arc<Backups>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (record, progress) = restore_job(&b, &id)?;
    let mut v = serde_json::to_value(&record).map_err(ApiError::internal)?;
    if let Some(p) = progress {
        v["progress"] = serde_json::to_value(p.snapshot()).map_err(ApiError::internal)?;
    }
    if let Some(s) = record.seconds() {
        v["seconds"] = json!(s);
    }
    Ok(Json(v))
}

async fn cancel(
    State(b): State<Arc<Backups>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    restore_job(&b, &id)?;
    match b.jobs.cancel(&id) {
        Some(true) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"job": id, "cancelling": true})),
        )),
        _ => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("restore {id} has already finished"),
        )),
    }
}
