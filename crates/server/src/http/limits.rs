//! Refuses a request whose `Content-Length` already announces a body over the limit, before
//! any of it is read. Without this, such a request was read until the body ended or hit the
//! limit, and a client that stopped sending early got a 400 about a broken body instead of
//! the 413 it deserves (found by `crates/cli/tests/reliability_hostile.rs`).

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

pub async fn refuse_announced_oversize(
    State(max_body): State<usize>,
    req: Request,
    next: Next,
) -> Response {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match announced {
        Some(n) if n > max_body as u64 => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body of {n} bytes is over the limit of {max_body} bytes (max_body_bytes)"
            ),
        )
        .into_response(),
        _ => next.run(req).await,
    }
}
