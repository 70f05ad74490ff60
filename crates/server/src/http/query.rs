//! `POST /api/v1/query`: the JSON query of `strata-query`, answered from the live engine.
//!
//! A query runs on the blocking pool under the server's memory budgets and stops early when
//! its client goes away (hyper drops the handler future, whose guard trips the query's token)
//! or the server shuts down.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use strata_query::{CancelToken, Limits, Query, QueryError};

use super::AppState;
use super::error::ApiError;

pub async fn query(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let st = state.clone();
    let token = CancelToken::new();
    // Dropped with this future: when the client disconnects, the scan stops at its next check.
    let _guard = token.drop_guard();
    let limits = Limits {
        query_bytes: state.queries.per_query,
        shared: Some(state.queries.shared.clone()),
        cancel: vec![token, state.queries.shutdown.clone()],
    };
    let running = state.metrics.query_started();
    let metrics = state.metrics.clone();
    let result = tokio::task::spawn_blocking(move || {
        let _running = running;
        let q = Query::from_json(&body)?;
        // Counted here, not after the await: when the client left, nobody awaits this.
        let (answer, account) = strata_query::execute_with(&st.readers(), &q, &limits)
            .inspect_err(|e| {
                if matches!(e, QueryError::Cancelled) {
                    metrics.query_cancelled();
                }
            })?;
        // Serialised while the account still holds the answer's bytes.
        let json = serde_json::to_vec(&answer).map_err(QueryError::Json)?;
        drop(answer);
        drop(account);
        Ok::<_, QueryError>(json)
    })
    .await?
    .map_err(query_error);
    match result {
        Ok(json) => Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response()),
        Err(e) => {
            state.metrics.error("query");
            Err(e)
        }
    }
}

fn query_error(e: QueryError) -> ApiError {
    match e {
        QueryError::GroupNotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e),
        QueryError::Scan(inner) => inner.into(),
        QueryError::TooLarge { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e),
        QueryError::Busy { .. } | QueryError::Cancelled => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e)
        }
        e => ApiError::bad_request(e),
    }
}
