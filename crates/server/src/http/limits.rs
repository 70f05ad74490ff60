//! Refuses a request whose `Content-Length` already announces a body over the limit, before
//! any of it is read. Without this, such a request was read until the body ended or hit the
//! limit, and a client that stopped sending early got a 400 about a broken body instead of
//! the 413 it deserves (found by `crates/cli/tests/reliability_hostile.rs`).
//!
//! Every 413 also says `Connection: close`. The server does not read the rest of a body it
//! refused, so it cannot keep the connection; without the header a keep-alive client put the
//! connection back in its pool and its next request could land on the closed socket
//! (`IncompleteMessage` in reqwest; a flaky CI run of the hostile-input test found it).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
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
    let mut resp = match announced {
        Some(n) if n > max_body as u64 => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body of {n} bytes is over the limit of {max_body} bytes (max_body_bytes)"
            ),
        )
        .into_response(),
        _ => next.run(req).await,
    };
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
