//! `GET|POST /query?db=G`: the InfluxDB 1.x query endpoint. The statements are parsed and run
//! by `strata_query::influxql` (the subset Grafana's InfluxDB data source and the `influx` CLI
//! send, documented in `docs/API.md`); this handler reads the parameters as InfluxDB does and
//! writes its JSON: `q` from the URL or a form body, `db`, `epoch`, `chunked`, `chunk_size`.
//! A syntax error is a 400 `{"error":"error parsing query: ... at line 1, char 8"}`; an error
//! in one statement is that statement's `error`, with status 200, as InfluxDB answers.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use strata_query::influxql::{self, Context, Epoch};
use strata_query::{CancelToken, Limits};

use super::AppState;

/// InfluxDB's default rows per chunk.
const DEFAULT_CHUNK_SIZE: usize = 10_000;

pub async fn query(
    State(state): State<AppState>,
    Query(mut params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        for (k, v) in form_urlencoded::parse(&body) {
            params.insert(k.into_owned(), v.into_owned());
        }
    }
    let Some(q) = params.get("q").filter(|q| !q.trim().is_empty()).cloned() else {
        return error(StatusCode::BAD_REQUEST, "missing required parameter \"q\"");
    };
    let epoch = match Epoch::parse(params.get("epoch").map(String::as_str)) {
        Ok(e) => e,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let chunked = params.get("chunked").is_some_and(|c| c == "true");
    let chunk_size = match params.get("chunk_size").map(|s| s.parse::<usize>()) {
        None => DEFAULT_CHUNK_SIZE,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "chunk_size must be a positive integer",
            );
        }
    };
    // The JSON API's budgets and cancellation: the guard trips the token when this future is
    // dropped (the client went away), and running scans stop at their next series.
    let token = CancelToken::new();
    let _guard = token.drop_guard();
    let ctx = Context {
        db: params.get("db").cloned(),
        now: now_ns(),
        limits: Limits {
            query_bytes: state.queries.per_query,
            shared: Some(state.queries.shared.clone()),
            cancel: vec![token, state.queries.shutdown.clone()],
        },
    };
    let st = state.clone();
    let running = state.metrics.query_started();
    let metrics = state.metrics.clone();
    let ran = tokio::task::spawn_blocking(move || {
        let _running = running;
        let r = influxql::run(&st.readers(), &ctx, &q);
        if ctx.limits.cancel.iter().any(CancelToken::is_cancelled) {
            metrics.query_cancelled();
        }
        r
    })
    .await;
    let results = match ran {
        Ok(Ok(r)) => r,
        Ok(Err(syntax)) => {
            state.metrics.error("influxql");
            return error(StatusCode::BAD_REQUEST, &syntax);
        }
        Err(e) => {
            state.metrics.error("influxql");
            return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
        }
    };
    let body = if chunked {
        influxql::render_chunked(&results, epoch, chunk_size)
    } else {
        influxql::render(&results, epoch)
    };
    json(StatusCode::OK, body)
}

fn json(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `{"error":"..."}`, InfluxDB's shape for a request it cannot run at all.
fn error(status: StatusCode, msg: &str) -> Response {
    let mut body = String::from("{\"error\":");
    influxql::json_string(&mut body, msg);
    body.push_str("}\n");
    json(status, body)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
