//! Operations endpoints: health, metrics, and local snapshots for `strata backup --server`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use strata_backup::snapshot_doc::{COMPACT_VERSION, CompactDoc, SNAPSHOT_DOC_VERSION, SnapshotDoc};

use super::AppState;
use super::error::ApiError;
use super::params::Params;

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

/// `POST /api/v1/snapshots[?version=2]`: pin a snapshot for a reader on this host (`strata
/// backup --server`). The answer is the versioned snapshot document: version 1
/// ([`SnapshotDoc`]) unless the reader asks for the compact version 2 ([`CompactDoc`]); the
/// pin lives until `DELETE /api/v1/snapshots/{id}` or its `expires_at`, across a server
/// restart too. An unknown version is refused before anything is pinned.
pub async fn take_snapshot(
    State(state): State<AppState>,
    Params(params): Params,
) -> Result<axum::response::Response, ApiError> {
    let version = match params.get("version").map(String::as_str) {
        None => SNAPSHOT_DOC_VERSION,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|v| [SNAPSHOT_DOC_VERSION, COMPACT_VERSION].contains(v))
            .ok_or_else(|| {
                let v: String = v.chars().take(32).collect();
                ApiError::bad_request(format!(
                    "snapshot document version '{v}' is unknown (this server writes {SNAPSHOT_DOC_VERSION} and {COMPACT_VERSION})"
                ))
            })?,
    };
    let engine = state.engine.clone();
    let snap = tokio::task::spawn_blocking(move || engine.snapshot()).await??;
    tracing::info!(id = %snap.id, lsn = snap.lsn, "snapshot taken");
    let compact = (version == COMPACT_VERSION)
        .then(|| CompactDoc::of(&snap))
        .flatten();
    let body = match compact {
        Some(d) => serde_json::to_vec(&d),
        None => serde_json::to_vec(&SnapshotDoc::from(&snap)),
    };
    match body {
        Ok(b) => Ok((
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "application/json")],
            b,
        )
            .into_response()),
        Err(e) => {
            let _ = state.engine.release_snapshot(&snap.id);
            Err(ApiError::internal(format!("encoding the snapshot: {e}")))
        }
    }
}

pub async fn release_snapshot(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || engine.release_snapshot(&id)).await??;
    Ok(StatusCode::NO_CONTENT)
}
