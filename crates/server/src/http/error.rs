//! API errors: a status code and a JSON body `{"error": "...", ...details}`, from every
//! endpoint: handlers return [`ApiError`], and [`json_errors`] rewrites whatever else answers
//! with an error in another form (axum's extractor rejections: 400, 405, 413, 415, 422; the
//! 404 of an unknown route) into the same shape.

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
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

/// Error bodies longer than this are cut (they are one-line messages).
const MAX_ERROR_BODY: usize = 64 << 10;

/// Middleware: an error response (4xx, 5xx) that is not JSON becomes `{"error": "<its text>"}`
/// with the same status and headers (a 405's `Allow` stays). The Prometheus endpoints keep
/// their protocol's plain-text errors.
pub async fn json_errors(req: Request, next: Next) -> Response {
    // The Prometheus remote write and read protocols answer errors in plain text, which
    // Prometheus shows to its user as it is.
    let prometheus = req.uri().path().starts_with("/api/v1/prom/");
    let resp = next.run(req).await;
    if prometheus {
        return resp;
    }
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, MAX_ERROR_BODY).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let msg = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase()
    } else {
        text
    };
    let body = json!({ "error": msg }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("worker task failed: {e}"))
    }
}
