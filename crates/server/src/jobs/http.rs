//! `GET /api/v1/jobs` (filters `kind`, `schedule`, `state`, `limit`; newest first),
//! `GET /api/v1/jobs/{id}` (with live progress while it runs) and
//! `POST /api/v1/jobs/{id}/cancel` (also `DELETE /api/v1/jobs/{id}`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Filter, Jobs};
use crate::http::error::ApiError;

pub fn routes(jobs: Arc<Jobs>) -> Router {
    Router::new()
        .route("/api/v1/jobs", get(list))
        .route("/api/v1/jobs/{id}", get(one).delete(cancel))
        .route("/api/v1/jobs/{id}/cancel", post(cancel))
        .with_state(jobs)
}

async fn list(
    State(jobs): State<Arc<Jobs>>,
    Query(f): Query<Filter>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "jobs": jobs.list(&f) })))
}

async fn one(
    State(jobs): State<Arc<Jobs>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (record, progress) = jobs
        .get(&id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("job {id} not found")))?;
    let mut v = serde_json::to_value(&record).map_err(ApiError::internal)?;
    if let Some(p) = progress {
        v["progress"] = serde_json::to_value(p.snapshot()).map_err(ApiError::internal)?;
    }
    // Details (a backup's `stats` and `timings`…) also at the top level, where clients of
    // the first job API read them.
    if let (Some(Value::Object(d)), Some(obj)) = (&record.detail, v.as_object_mut()) {
        for (k, x) in d {
            obj.entry(k.clone()).or_insert_with(|| x.clone());
        }
    }
    if let Some(s) = record.seconds() {
        v["seconds"] = json!(s);
    }
    Ok(Json(v))
}

async fn cancel(
    State(jobs): State<Arc<Jobs>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    match jobs.cancel(&id) {
        Some(true) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"job": id, "cancelling": true})),
        )),
        Some(false) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("job {id} has already finished"),
        )),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("job {id} not found"),
        )),
    }
}
