//! Operations endpoints: health, metrics, and local snapshots for `strata backup --server`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use strata_backup::snapshot_doc::SnapshotDoc;

use super::AppState;
use super::error::ApiError;

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// InfluxDB clients probe `/ping` before writing.
pub async fn ping() -> StatusCode {
    StatusCode::NO_CONTENT
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.set_query_memory(state.queries.shared.used());
    let text = state.metrics.render(&state.engine.stats());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}

/// `POST /api/v1/snapshots`: pin a snapshot for a reader on this host (`strata backup
/// --server`). The answer is the versioned [`SnapshotDoc`]; the pin lives until `DELETE
/// /api/v1/snapshots/{id}` or its `expires_at`, across a server restart too.
pub async fn take_snapshot(
    State(state): State<AppState>,
) -> Result<(StatusCode, Json<SnapshotDoc>), ApiError> {
    let engine = state.engine.clone();
    let snap = tokio::task::spawn_blocking(move || engine.snapshot()).await??;
    tracing::info!(id = %snap.id, lsn = snap.lsn, "snapshot taken");
    Ok((StatusCode::CREATED, Json(SnapshotDoc::from(&snap))))
}

pub async fn release_snapshot(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || engine.release_snapshot(&id)).await??;
    Ok(StatusCode::NO_CONTENT)
}
