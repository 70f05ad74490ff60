//! API errors: a status code and a JSON body `{"error": "...", ...details}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::ingest::body::BodyError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, msg: impl std::fmt::Display) -> Self {
        ApiError {
            status,
            body: json!({ "error": msg.to_string() }),
        }
    }

    pub fn bad_request(msg: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, msg)
    }

    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, msg)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, body = %self.body, "request failed");
        } else {
            tracing::debug!(status = %self.status, body = %self.body, "request rejected");
        }
        (self.status, Json(self.body)).into_response()
    }
}

impl From<strata_engine::Error> for ApiError {
    fn from(e: strata_engine::Error) -> Self {
        use strata_engine::Error as E;
        let status = match &e {
            E::InvalidInput(_) | E::FieldTypeConflict { .. } => StatusCode::BAD_REQUEST,
            E::GroupNotFound(_) | E::SnapshotNotFound(_) => StatusCode::NOT_FOUND,
            E::Poisoned(_) | E::Closed | E::Locked { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e)
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        let status = match e {
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::Corrupt { .. } => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("worker task failed: {e}"))
    }
}
