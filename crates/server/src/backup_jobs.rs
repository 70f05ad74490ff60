//! `POST /api/v1/backups`, `GET /api/v1/backups`, `GET /api/v1/jobs/{id}`: backup jobs run
//! in-process. Owned by the backup work; the server merges [`routes`] into its router (behind
//! its auth layer).
//!
//! A job runs `strata_backup::backup::run`, the same backup sequence as `strata backup`
//! (snapshot, plan, upload, manifest, release). One backup runs at a time; a second request
//! while one runs gets 409. The repository is reached with the server's
//! [`RepoSettings`] (URL, password source, endpoint, region, credentials, concurrency and
//! bandwidth limits: the same type and meaning as the CLI's flags).
//!
//! The request body is optional JSON (`{"full": true, "labels": {"k": "v"}}`), accepted with
//! or without a `Content-Type` header.
//!
//! The opened repository (with its unlocked key) is kept in memory across jobs: deriving the
//! key from the password is deliberately expensive (Argon2id, 64 MiB, t=3: 100+ ms), and a
//! server backing up every few minutes should pay it once, not per job. A job that fails
//! drops the cached repository, so the next one opens (and unlocks) it afresh.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use strata_backup::backup::{BackupOptions, run};
use strata_backup::progress::ProgressSnapshot;
use strata_backup::settings::RepoSettings;
use strata_backup::source::EngineSource;
use strata_backup::{Progress, Repository};
use strata_engine::Engine;

use crate::http::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum JobState {
    Running,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
struct JobStatus {
    id: String,
    kind: &'static str,
    state: JobState,
    started: String,
    finished: Option<String>,
    snapshot: Option<String>,
    error: Option<String>,
    stats: Option<Value>,
    /// `unlock_s` (0 when the cached key was used: `key_cached`), `backup_s` (the whole
    /// sequence) and its phases (`snapshot_s`, `list_s`, `plan_s`, `upload_s`, `manifest_s`,
    /// `release_s`).
    timings: Option<Value>,
}

struct Job {
    status: Mutex<JobStatus>,
    progress: Arc<Progress>,
}

struct Jobs {
    engine: Arc<Engine>,
    repo: Option<RepoSettings>,
    /// The repository opened by an earlier job, reused while jobs succeed.
    opened: tokio::sync::Mutex<Option<Arc<Repository>>>,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    seq: Mutex<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct BackupRequest {
    full: bool,
    labels: BTreeMap<String, String>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Routes for backup jobs. `repo` is the server's configured backup repository.
pub fn routes(engine: Arc<Engine>, repo: Option<RepoSettings>) -> Router {
    let state = Arc::new(Jobs {
        engine,
        repo,
        opened: tokio::sync::Mutex::new(None),
        jobs: Mutex::new(HashMap::new()),
        seq: Mutex::new(0),
    });
    Router::new()
        .route("/api/v1/backups", post(start).get(list))
        .route("/api/v1/jobs/{id}", get(job))
        .with_state(state)
}

/// The cached repository, or a freshly opened (and cached) one. Returns whether it was
/// unlocked now, for the job's report.
async fn cached_repo(
    jobs: &Jobs,
    settings: &RepoSettings,
) -> Result<(Arc<Repository>, bool), ApiError> {
    let mut slot = jobs.opened.lock().await;
    if let Some(r) = slot.as_ref() {
        return Ok((r.clone(), false));
    }
    let r = Arc::new(
        settings
            .open()
            .await
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e))?,
    );
    *slot = Some(r.clone());
    Ok((r, true))
}

fn repo_settings(jobs: &Jobs) -> Result<RepoSettings, ApiError> {
    jobs.repo.clone().ok_or_else(|| {
        ApiError::bad_request("no backup repository configured (start the server with --repo URL)")
    })
}

/// The optional JSON body, whatever its `Content-Type` says (curl sends none, or a form type
/// with `-d`): empty means defaults.
fn parse_request(body: &[u8]) -> Result<BackupRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(BackupRequest::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("backup request is not valid JSON: {e}")))
}

async fn start(
    State(jobs): State<Arc<Jobs>>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = parse_request(&body)?;
    let settings = repo_settings(&jobs)?;
    let running = locked(&jobs.jobs)
        .values()
        .any(|j| locked(&j.status).state == JobState::Running);
    if running {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "a backup job is already running",
        ));
    }
    let unlock_started = std::time::Instant::now();
    let (repo, unlocked) = cached_repo(&jobs, &settings).await?;
    let unlock_s = unlock_started.elapsed().as_secs_f64();
    let id = {
        let mut s = locked(&jobs.seq);
        *s += 1;
        format!("backup-{}", *s)
    };
    let job = Arc::new(Job {
        status: Mutex::new(JobStatus {
            id: id.clone(),
            kind: "backup",
            state: JobState::Running,
            started: chrono::Utc::now().to_rfc3339(),
            finished: None,
            snapshot: None,
            error: None,
            stats: None,
            timings: None,
        }),
        progress: Arc::new(Progress::default()),
    });
    locked(&jobs.jobs).insert(id.clone(), job.clone());
    let engine = jobs.engine.clone();
    let jobs2 = jobs.clone();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let result = run_backup(engine, repo, &req, job.progress.clone()).await;
        let run_s = started.elapsed().as_secs_f64();
        if result.is_err() {
            // A changed or damaged repository must not stay cached.
            *jobs2.opened.lock().await = None;
        }
        let mut st = locked(&job.status);
        st.finished = Some(chrono::Utc::now().to_rfc3339());
        match result {
            Ok((m, phases)) => {
                st.state = JobState::Succeeded;
                st.snapshot = Some(m.id.clone());
                st.stats = serde_json::to_value(&m.stats).ok();
                let mut t = json!({
                    "unlock_s": unlock_s,
                    "key_cached": !unlocked,
                    "backup_s": run_s,
                });
                if let (Some(t), Ok(Value::Object(p))) =
                    (t.as_object_mut(), serde_json::to_value(phases))
                {
                    t.extend(p);
                }
                st.timings = Some(t);
                tracing::info!(job = %st.id, snapshot = %m.id, "backup job finished");
            }
            Err(e) => {
                st.state = JobState::Failed;
                st.error = Some(e.clone());
                tracing::warn!(job = %st.id, error = %e, "backup job failed");
            }
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job": id, "status": format!("/api/v1/jobs/{id}")})),
    ))
}

async fn run_backup(
    engine: Arc<Engine>,
    repo: Arc<Repository>,
    req: &BackupRequest,
    progress: Arc<Progress>,
) -> Result<(strata_backup::Manifest, strata_backup::backup::PhaseTimings), String> {
    let opts = BackupOptions {
        full: req.full,
        labels: req.labels.clone(),
        ..Default::default()
    };
    run(&EngineSource::new(engine), repo, &opts, progress)
        .await
        .map_err(|e| e.to_string())
}

async fn list(State(jobs): State<Arc<Jobs>>) -> Result<Json<Value>, ApiError> {
    let settings = repo_settings(&jobs)?;
    let url = settings.url.clone();
    let (repo, _) = cached_repo(&jobs, &settings).await?;
    let (ms, bad) = repo
        .manifests()
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e))?;
    let snaps: Vec<Value> = ms
        .iter()
        .map(|m| {
            json!({
                "id": m.id, "time": m.recorded_time(), "node_id": m.node_id, "kind": m.kind,
                "parent": m.parent, "lsn": m.lsn, "files": m.stats.files, "bytes": m.stats.bytes,
                "labels": m.labels,
            })
        })
        .collect();
    let damaged: Vec<Value> = bad
        .iter()
        .map(|(id, e)| json!({"id": id, "error": e.to_string()}))
        .collect();
    Ok(Json(
        json!({"repository": url, "snapshots": snaps, "damaged": damaged}),
    ))
}

async fn job(
    State(jobs): State<Arc<Jobs>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = locked(&jobs.jobs)
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("job {id} not found")))?;
    let status = locked(&job.status).clone();
    let progress: ProgressSnapshot = job.progress.snapshot();
    let mut v = serde_json::to_value(&status).map_err(ApiError::internal)?;
    v["progress"] = serde_json::to_value(&progress).map_err(ApiError::internal)?;
    Ok(Json(v))
}
