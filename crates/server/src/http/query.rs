//! `POST /api/v1/query`: the JSON query of `strata-query`, answered from the live engine.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bytes::Bytes;
use strata_query::{QueryError, QueryResult};

use super::AppState;
use super::error::ApiError;

pub async fn query(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<QueryResult>, ApiError> {
    let engine = state.engine.clone();
    let result = tokio::task::spawn_blocking(move || strata_query::run_json(&*engine, &body))
        .await?
        .map_err(query_error);
    if result.is_err() {
        state.metrics.error("query");
    }
    result.map(Json)
}

fn query_error(e: QueryError) -> ApiError {
    match e {
        QueryError::GroupNotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e),
        QueryError::Scan(inner) => inner.into(),
        e => ApiError::bad_request(e),
    }
}
