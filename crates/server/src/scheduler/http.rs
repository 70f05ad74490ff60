//! `GET /api/v1/schedules`: every schedule with its configuration (credentials redacted) and
//! live state (next run, last outcome, bytes since the last backup, snapshots kept), and
//! `POST /api/v1/schedules/{name}/run`: run a schedule now (409 while it runs), and
//! `POST /api/v1/schedules/{name}/drill`: a restore drill of its newest snapshot now (409 while
//! one runs; it is a `drill` job in `GET /api/v1/jobs`, its report the job's `detail`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::Scheduler;
use crate::http::error::ApiError;

pub fn routes(s: Arc<Scheduler>) -> Router {
    Router::new()
        .route("/api/v1/schedules", get(list))
        .route("/api/v1/schedules/{name}/run", post(run_now))
        .route("/api/v1/schedules/{name}/drill", post(drill_now))
        .with_state(s)
}

async fn list(State(s): State<Arc<Scheduler>>) -> Json<Value> {
    let v: Vec<Value> = s
        .schedules
        .iter()
        .map(|sc| {
            let c = &sc.checked.config;
            json!({
                "name": c.name,
                "cron": c.cron,
                "space_trigger_bytes": sc.checked.space_trigger,
                "groups": c.groups,
                "tiers": c.tiers,
                "full": c.full,
                "drill": c.drill,
                "copy_to": c.copy_to.as_ref().map(|r| r.url.clone()),
                "retention": c.retention,
                "retries": sc.checked.retries,
                "retry_delay_s": sc.checked.retry_delay.as_secs_f64(),
                "repository": sc.repo.url,
                "state": sc.state(),
            })
        })
        .collect();
    Json(json!({ "schedules": v }))
}

fn find(s: &Scheduler, name: &str) -> Result<Arc<super::Schedule>, ApiError> {
    s.schedules
        .iter()
        .find(|x| x.name() == name)
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("schedule {name} not found")))
}

async fn drill_now(
    State(s): State<Arc<Scheduler>>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let sc = find(&s, &name)?;
    if s.backups.jobs.is_running(&format!("drill:{name}")) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("a drill of schedule {name} is running"),
        ));
    }
    tokio::spawn(async move { s.drill(&sc).await });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"schedule": name, "drill": true})),
    ))
}

async fn run_now(
    State(s): State<Arc<Scheduler>>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let sc = find(&s, &name)?;
    if s.backups.jobs.is_running(&sc.key()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("schedule {name} is running"),
        ));
    }
    tokio::spawn(s.clone().run(sc, "api"));
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"schedule": name, "started": true})),
    ))
}
