//! Every request body must arrive whole within `body_timeout` (and within `max_body_bytes`).
//!
//! Handlers buffer their bodies anyway; buffering here, under one deadline, means a client
//! that sends its headers and then trickles (or never sends) the body gets a 408 and its
//! connection closed, instead of holding a connection and a handler forever. Runs after the
//! token check, so an unauthenticated client's body is never read.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::error::ApiError;

#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline {
    pub timeout: Duration,
    pub max_body: usize,
}

enum Failed {
    TooLarge,
    Broken(axum::Error),
}

async fn collect(body: Body, max: usize) -> Result<Bytes, Failed> {
    let mut stream = body.into_data_stream();
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Failed::Broken)?;
        total = total.saturating_add(chunk.len());
        if total > max {
            return Err(Failed::TooLarge);
        }
        chunks.push(chunk);
    }
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.swap_remove(0),
        _ => {
            let mut all = Vec::with_capacity(total);
            for c in &chunks {
                all.extend_from_slice(c);
            }
            Bytes::from(all)
        }
    })
}

pub async fn body_deadline(State(d): State<BodyDeadline>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let failed = match tokio::time::timeout(d.timeout, collect(body, d.max_body)).await {
        Ok(Ok(bytes)) => {
            return next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
        }
        Ok(Err(Failed::TooLarge)) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body exceeds the limit of {} bytes (max_body_bytes)",
                d.max_body
            ),
        ),
        Ok(Err(Failed::Broken(e))) => ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("cannot read the request body: {e}"),
        ),
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {:?} (body_timeout)",
                d.timeout
            ),
        ),
    };
    // The rest of the body is not read, so the connection cannot be reused.
    let mut resp = failed.into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}
