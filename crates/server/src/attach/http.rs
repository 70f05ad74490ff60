//! `POST /api/v1/attachments` (attach), `GET /api/v1/attachments` (list),
//! `DELETE /api/v1/attachments/{name}` or `DELETE /api/v1/attachments?as=NAME` (detach).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{Value, json};
use strata_backup::settings::RepoSettings;
use strata_engine::Engine;

use super::{AttachError, AttachmentConfig, Attachments};
use crate::http::error::ApiError;

#[derive(Clone)]
pub struct AttachState {
    pub engine: Arc<Engine>,
    pub attachments: Arc<Attachments>,
    /// The server's repository settings (the default repository of an attachment).
    pub repo: RepoSettings,
}

pub fn routes(state: AttachState) -> Router {
    Router::new()
        .route(
            "/api/v1/attachments",
            get(list).post(attach).delete(detach_query),
        )
        .route("/api/v1/attachments/{name}", delete(detach))
        .with_state(state)
}

impl From<AttachError> for ApiError {
    fn from(e: AttachError) -> Self {
        use strata_backup::Error as B;
        let status = match &e {
            AttachError::Invalid(_) => StatusCode::BAD_REQUEST,
            AttachError::Conflict(_) => StatusCode::CONFLICT,
            AttachError::NotFound(_) => StatusCode::NOT_FOUND,
            AttachError::Repository(
                B::SnapshotNotFound(_) | B::NoRepository(_) | B::AmbiguousSnapshot(_),
            ) => StatusCode::NOT_FOUND,
            AttachError::Repository(
                B::InvalidArgument(_) | B::BadUrl { .. } | B::Refused(_) | B::PasswordRequired,
            ) => StatusCode::BAD_REQUEST,
            AttachError::Repository(B::WrongPassword) => StatusCode::FORBIDDEN,
            AttachError::Repository(_) => StatusCode::BAD_GATEWAY,
        };
        ApiError::new(status, e)
    }
}

async fn list(State(st): State<AttachState>) -> Json<Value> {
    let all: Vec<Value> = st.attachments.list().iter().map(|a| a.describe()).collect();
    Json(json!({ "attachments": all }))
}

async fn attach(
    State(st): State<AttachState>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let cfg: AttachmentConfig = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("bad attachment: {e}")))?;
    cfg.validate().map_err(ApiError::bad_request)?;
    let made = tokio::task::spawn_blocking(move || {
        st.attachments.attach(&st.engine, &cfg, &st.repo, false)
    })
    .await
    .map_err(ApiError::internal)??;
    tracing::info!(name = %made.name, snapshot = made.snapshot(), "backup snapshot attached");
    Ok((StatusCode::CREATED, Json(made.describe())))
}

async fn detach(
    State(st): State<AttachState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let gone = st.attachments.detach(&name)?;
    tracing::info!(name = %gone.name, "backup snapshot detached");
    // The mount may be dropped here (a runtime of its own, files): off the async workers.
    tokio::task::spawn_blocking(move || drop(gone));
    Ok(StatusCode::NO_CONTENT)
}

async fn detach_query(
    st: State<AttachState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let name = params.get("as").cloned().ok_or_else(|| {
        ApiError::bad_request("name the attachment: DELETE /api/v1/attachments/NAME or ?as=NAME")
    })?;
    detach(st, Path(name)).await
}
