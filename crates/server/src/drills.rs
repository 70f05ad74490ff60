//! `POST /api/v1/drills {"snapshot": "latest"|ID}` → 202 `{"job": ID}`: a restore drill
//! (`strata_backup::drill`) of a snapshot of the server's repository, run by the server as a
//! `drill` job. `GET /api/v1/jobs/ID` shows its progress and, once it finished, the drill's
//! report as the job's `detail`; the job fails when the drill found a difference. One API drill
//! at a time (409). `strata drill --server URL` uses it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use strata_backup::drill::{DrillOptions, DrillReport, drill};

use crate::backup_jobs::Backups;
use crate::http::error::ApiError;
use crate::jobs::{JobKind, JobRecord, JobState};

const KEY: &str = "api-drill";

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct DrillRequest {
    snapshot: String,
}

impl Default for DrillRequest {
    fn default() -> Self {
        DrillRequest {
            snapshot: "latest".into(),
        }
    }
}

pub fn routes(b: Arc<Backups>) -> Router {
    Router::new()
        .route("/api/v1/drills", post(start))
        .with_state(b)
}

async fn start(
    State(b): State<Arc<Backups>>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: DrillRequest = if body.iter().all(u8::is_ascii_whitespace) {
        DrillRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("drill request is not valid JSON: {e}")))?
    };
    let settings = b.repo.clone().ok_or_else(|| {
        ApiError::bad_request("no backup repository configured (start the server with --repo URL)")
    })?;
    let (repo, _) = b
        .repository(&settings)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e))?;
    let h = b
        .jobs
        .begin(JobKind::Drill, KEY, None, "api")
        .map_err(|_| ApiError::new(StatusCode::CONFLICT, "a drill is already running"))?;
    let id = h.id.clone();
    let b2 = b.clone();
    tokio::spawn(async move {
        let opts = DrillOptions {
            parallelism: 4,
            ..Default::default()
        };
        let r = drill(repo, &req.snapshot, &opts, h.progress.clone()).await;
        b2.jobs.finish(h, |rec| {
            record(rec, &r);
        });
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "job": id }))))
}

/// Fills a drill job's record from the drill's outcome (the report as `detail`; failed, with
/// the first difference or the error, unless it passed). Returns that error.
pub(crate) fn record(
    rec: &mut JobRecord,
    r: &strata_backup::Result<DrillReport>,
) -> Option<String> {
    let error = match r {
        Ok(rep) if rep.passed => None,
        Ok(rep) => Some(format!(
            "{} differences, first: {}",
            rep.differences.len(),
            rep.differences.first().map_or("", String::as_str)
        )),
        Err(e) => Some(e.to_string()),
    };
    if let Ok(rep) = r {
        rec.snapshot = Some(rep.snapshot.clone());
        rec.bytes_read = rep.bytes;
        rec.detail = serde_json::to_value(rep).ok();
    }
    if let Some(e) = &error {
        rec.state = JobState::Failed;
        rec.error = Some(e.clone());
    }
    error
}
