//! The HTTP API: routes, shared state, auth and body limits.

mod admin;
mod auth;
mod body_deadline;
pub mod error;
mod groups;
mod influxql;
mod limits;
mod params;
mod prom_read;
mod query;
mod write;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use strata_engine::Engine;

use crate::metrics::Metrics;

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
    /// Largest decoded body accepted by the write endpoints.
    pub max_body: usize,
    /// A request body must arrive whole within this long.
    pub body_timeout: std::time::Duration,
    /// What one Prometheus remote read may return.
    pub remote_read: crate::remote_read::Limits,
    /// Most fields per point (`max_fields_per_point`), checked by the line-protocol parser so
    /// the error names the line.
    pub max_fields: usize,
    /// Memory budgets and the shutdown token of `POST /api/v1/query`.
    pub queries: QueryLimits,
    /// Backup snapshots mounted read-only as groups (`crate::attach`).
    pub attachments: Arc<crate::attach::Attachments>,
}

impl AppState {
    /// What queries read: the live engine and the attached groups.
    pub fn readers(&self) -> crate::attach::Readers<'_> {
        crate::attach::Readers {
            live: &self.engine,
            attachments: &self.attachments,
        }
    }
}

/// Limits shared by every query of the server.
#[derive(Clone, Debug)]
pub struct QueryLimits {
    /// Most bytes one query may hold (`query_memory_bytes`).
    pub per_query: usize,
    /// Shared by running queries (`query_memory_total_bytes`).
    pub shared: Arc<strata_query::SharedBudget>,
    /// Tripped when the server shuts down, so running queries stop instead of delaying it.
    pub shutdown: strata_query::CancelToken,
}

impl QueryLimits {
    pub fn new(per_query: usize, total: usize) -> QueryLimits {
        QueryLimits {
            per_query,
            shared: strata_query::SharedBudget::new(total),
            shutdown: strata_query::CancelToken::new(),
        }
    }
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits::new(
            strata_query::DEFAULT_QUERY_BYTES,
            strata_query::DEFAULT_TOTAL_BYTES,
        )
    }
}

/// The whole API. Every route, including the backup, job and schedule routes merged in
/// (`backup`), sits behind the token
/// check (when `token` is set) and the body limit; every error answer is JSON.
pub fn router(state: AppState, token: Option<String>, backup: Router) -> Router {
    let body_limit = state.max_body;
    let deadline = body_deadline::BodyDeadline {
        timeout: state.body_timeout,
        max_body: body_limit,
    };
    Router::new()
        .route("/api/v1/write", post(write::write_strata))
        .route("/write", post(write::write_influx_v1))
        .route("/api/v2/write", post(write::write_influx_v2))
        .route("/api/v1/prom/write", post(write::write_prometheus))
        .route("/api/v1/prom/read", post(prom_read::read))
        .route("/api/v1/query", post(query::query))
        .route("/query", get(influxql::query).post(influxql::query))
        .route("/api/v1/groups", get(groups::list))
        .route(
            "/api/v1/groups/{name}",
            get(groups::get).put(groups::put).delete(groups::delete),
        )
        .route("/api/v1/snapshots", post(admin::take_snapshot))
        .route("/api/v1/snapshots/{id}", delete(admin::release_snapshot))
        .route("/healthz", get(admin::healthz))
        .route("/ping", get(admin::ping).head(admin::ping))
        .route("/metrics", get(admin::metrics))
        .with_state(state)
        .merge(backup)
        .layer(axum::middleware::from_fn_with_state(
            deadline,
            body_deadline::body_deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            token.map(Arc::<str>::from),
            auth::require_token,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            body_limit,
            limits::refuse_announced_oversize,
        ))
        // Outermost: every error answer, whoever produced it, leaves as JSON.
        .layer(axum::middleware::from_fn(error::json_errors))
}
