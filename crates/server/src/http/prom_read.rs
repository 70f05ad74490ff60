//! `POST /api/v1/prom/read?group=G`: Prometheus remote read (sampled responses). Errors are
//! plain text with the status, as Prometheus' own remote-read handler answers.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use strata_prompb::Message;
use strata_query::CancelToken;

use super::AppState;
use crate::ingest::body;
use crate::remote_read::{self, ReadRequest};

pub async fn read(State(state): State<AppState>, uri: Uri, body: Bytes) -> Response {
    let params = match super::params::unique(uri.query().unwrap_or_default()) {
        Ok(p) => p,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e),
    };
    let Some(group) = params.get("group").filter(|g| !g.is_empty()).cloned() else {
        return text(
            StatusCode::BAD_REQUEST,
            "missing required parameter \"group\"",
        );
    };
    let st = state.clone();
    // Tripped when this future is dropped (the client went away): the read stops.
    let token = CancelToken::new();
    let _guard = token.drop_guard();
    let cancel = vec![token, state.queries.shutdown.clone()];
    let running = state.metrics.query_started();
    let joined = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, (StatusCode, String)> {
        let _running = running;
        let raw = body::unsnappy(&body, st.max_body)
            .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        let req = ReadRequest::decode(raw.as_slice()).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("remote read: bad protobuf: {e}"),
            )
        })?;
        let read = remote_read::read_until(&st.engine, &group, &req, st.remote_read, &cancel);
        let resp = read.map_err(|e| {
            let status = match &e {
                remote_read::ReadError::Cancelled => {
                    st.metrics.query_cancelled();
                    StatusCode::SERVICE_UNAVAILABLE
                }
                remote_read::ReadError::GroupNotFound(_) => StatusCode::NOT_FOUND,
                e if e.is_client_error() => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (status, e.to_string())
        })?;
        snap::raw::Encoder::new()
            .compress_vec(&resp.encode_to_vec())
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })
    .await;
    match joined {
        Ok(Ok(bytes)) => {
            let mut r = bytes.into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-protobuf"),
            );
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("snappy"));
            r
        }
        Ok(Err((status, msg))) => {
            state.metrics.error("prom_read");
            text(status, &msg)
        }
        Err(e) => {
            state.metrics.error("prom_read");
            text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}

fn text(status: StatusCode, msg: &str) -> Response {
    if status.is_server_error() {
        tracing::error!(%status, msg, "remote read failed");
    }
    (status, format!("{msg}\n")).into_response()
}
