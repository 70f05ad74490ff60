//! Write endpoints: line protocol (Strata, InfluxDB v1 and v2 URLs) and Prometheus remote write.
//!
//! A batch is decoded completely before anything reaches the engine, then written with one
//! `Engine::write` call, which is atomic: either the whole batch is durable (204) or nothing of
//! it is written (4xx/5xx). Decoding and the blocking write run on tokio's blocking pool.

use std::collections::HashMap;
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use serde_json::json;
use strata_engine::PointBatch;

use super::AppState;
use super::error::ApiError;
use super::params::Params;
use crate::ingest::line_protocol::{self, Precision};
use crate::ingest::{body, remote_write};

/// The query parameter naming the group, per URL flavour.
#[derive(Clone, Copy)]
enum Flavor {
    Strata,
    InfluxV1,
    InfluxV2,
}

impl Flavor {
    fn group_param(self) -> &'static str {
        match self {
            Flavor::Strata => "group",
            Flavor::InfluxV1 => "db",
            Flavor::InfluxV2 => "bucket",
        }
    }
}

pub async fn write_strata(
    s: State<AppState>,
    q: Params,
    h: HeaderMap,
    b: Bytes,
) -> Result<StatusCode, ApiError> {
    write_lines(s, q, h, b, Flavor::Strata).await
}

pub async fn write_influx_v1(
    s: State<AppState>,
    q: Params,
    h: HeaderMap,
    b: Bytes,
) -> Result<StatusCode, ApiError> {
    write_lines(s, q, h, b, Flavor::InfluxV1).await
}

pub async fn write_influx_v2(
    s: State<AppState>,
    q: Params,
    h: HeaderMap,
    b: Bytes,
) -> Result<StatusCode, ApiError> {
    write_lines(s, q, h, b, Flavor::InfluxV2).await
}

fn group_of(params: &HashMap<String, String>, name: &str) -> Result<String, ApiError> {
    match params.get(name) {
        Some(g) if !g.is_empty() => Ok(g.clone()),
        _ => Err(ApiError::bad_request(format!(
            "missing query parameter '{name}' (the group to write to)"
        ))),
    }
}

async fn write_lines(
    State(state): State<AppState>,
    Params(params): Params,
    headers: HeaderMap,
    body: Bytes,
    flavor: Flavor,
) -> Result<StatusCode, ApiError> {
    let result = async {
        let group = group_of(&params, flavor.group_param())?;
        let precision = match params.get("precision").map(String::as_str) {
            None | Some("") => Precision::Nanos,
            Some(p) => Precision::parse(p).ok_or_else(|| {
                ApiError::bad_request(format!("bad precision '{p}' (ns, us, ms, s)"))
            })?,
        };
        let encoding = headers
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap_or("?").to_string());
        let st = state.clone();
        tokio::task::spawn_blocking(move || {
            let body = body::decode_line_body(body, encoding.as_deref(), st.max_body)?;
            let points = line_protocol::parse_with(&body, precision, now_ns(), st.max_fields)
                .map_err(|e| ApiError {
                    status: StatusCode::BAD_REQUEST,
                    body: json!({
                        "error": format!("line protocol: {e}"),
                        "line": e.line,
                        "reason": e.reason,
                    }),
                })?;
            commit(&st, &group, points, "line", body.len())
        })
        .await?
    }
    .await;
    if result.is_err() {
        state.metrics.error("write");
    }
    result.map(|()| StatusCode::NO_CONTENT)
}

pub async fn write_prometheus(
    State(state): State<AppState>,
    Params(params): Params,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let st = state.clone();
    let result = async {
        let group = group_of(&params, "group")?;
        tokio::task::spawn_blocking(move || {
            let raw = body::unsnappy(&body, st.max_body)?;
            let decoded = remote_write::decode(&raw)
                .map_err(|e| ApiError::bad_request(format!("remote write: {e}")))?;
            st.metrics.stale_markers(decoded.stale_markers);
            let points = PointBatch::from_points(&decoded.points);
            commit(&st, &group, points, "prometheus", raw.len())
        })
        .await?
    }
    .await;
    if result.is_err() {
        state.metrics.error("prom_write");
    }
    result.map(|()| StatusCode::NO_CONTENT)
}

/// One atomic engine write; an empty batch is a successful no-op.
fn commit(
    st: &AppState,
    group: &str,
    points: PointBatch<'_>,
    protocol: &'static str,
    bytes: usize,
) -> Result<(), ApiError> {
    if let Some(refused) = st.attachments.refuse_write(group) {
        return Err(ApiError::new(axum::http::StatusCode::FORBIDDEN, refused));
    }
    if points.is_empty() {
        return Ok(());
    }
    let start = Instant::now();
    let n = points.len() as u64;
    st.engine.write_batch(group, points)?;
    st.metrics
        .ingested(protocol, n, bytes as u64, start.elapsed());
    Ok(())
}

fn now_ns() -> i64 {
    let now = chrono::Utc::now();
    now.timestamp_nanos_opt().unwrap_or(i64::MAX)
}
