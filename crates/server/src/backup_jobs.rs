//! Backups run by the server: `POST /api/v1/backups` (a job), `GET /api/v1/backups` (the
//! repository's snapshots), and [`Backups::run_once`], the one backup attempt that API jobs
//! and scheduled jobs share. The server merges [`routes`] into its router (behind its auth
//! layer); job status is `GET /api/v1/jobs/{id}` ([`crate::jobs`]).
//!
//! An attempt runs the backup sequence of `strata backup` (snapshot, plan, upload, manifest,
//! release), restricted to the job's groups when it has any, and stops when the job is
//! cancelled (the snapshot is released either way; objects already uploaded stay for the
//! next backup to reuse, or for garbage collection). One API backup runs at a time (409
//! otherwise); each schedule has its own slot ([`crate::jobs::Jobs::begin`]).
//!
//! The request body is optional JSON (`{"full": true, "labels": {"k": "v"}, "groups":
//! ["g"]}`), accepted with or without a `Content-Type` header.
//!
//! Opened repositories (with their unlocked keys) are kept in memory across jobs, by URL:
//! deriving a key from the password is deliberately expensive (Argon2id, 64 MiB, t=3: 100+
//! ms), and a server backing up every few minutes should pay it once, not per job. A job that
//! fails drops its cached repository, so the next one opens (and unlocks) it afresh.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use strata_backup::backup::{BackupOptions, PhaseTimings, backup_timed};
use strata_backup::settings::RepoSettings;
use strata_backup::source::{EngineSource, SnapshotSource};
use strata_backup::{Manifest, Repository};
use strata_engine::Engine;

use crate::http::error::ApiError;
use crate::jobs::{JobHandle, JobKind, JobState, Jobs};

/// What one backup covers and how it is recorded.
#[derive(Debug, Clone, Default)]
pub struct BackupSpec {
    pub full: bool,
    pub labels: BTreeMap<String, String>,
    /// Only these groups (empty: all).
    pub groups: BTreeSet<String>,
    pub schedule: Option<String>,
}

/// The server's backup service: the engine, the jobs, the default repository and the cache
/// of opened repositories.
pub struct Backups {
    pub engine: Arc<Engine>,
    pub jobs: Arc<Jobs>,
    /// The server's repository (`--repo`, `[repository]`), for API jobs.
    pub repo: Option<RepoSettings>,
    opened: tokio::sync::Mutex<HashMap<String, Arc<Repository>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct BackupRequest {
    full: bool,
    labels: BTreeMap<String, String>,
    /// Only these groups (empty: all).
    groups: Vec<String>,
}

impl Backups {
    pub fn new(engine: Arc<Engine>, jobs: Arc<Jobs>, repo: Option<RepoSettings>) -> Arc<Self> {
        Arc::new(Backups {
            engine,
            jobs,
            repo,
            opened: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The cached repository at `settings.url`, or a freshly opened (and cached) one. Also
    /// returns whether it was unlocked now.
    pub async fn repository(
        &self,
        settings: &RepoSettings,
    ) -> strata_backup::Result<(Arc<Repository>, bool)> {
        let mut cache = self.opened.lock().await;
        if let Some(r) = cache.get(&settings.url) {
            return Ok((r.clone(), false));
        }
        let r = Arc::new(settings.open().await?);
        cache.insert(settings.url.clone(), r.clone());
        Ok((r, true))
    }

    /// Drops a cached repository (after a failure: it may have changed or be damaged).
    pub async fn forget(&self, url: &str) {
        self.opened.lock().await.remove(url);
    }

    /// One backup attempt under job `h`: snapshot, upload, manifest, release. A cancelled job
    /// stops at once and still releases its snapshot.
    pub async fn run_once(
        &self,
        repo: Arc<Repository>,
        spec: &BackupSpec,
        h: &JobHandle,
    ) -> Result<(Arc<Manifest>, PhaseTimings), String> {
        let source = EngineSource::new(self.engine.clone());
        let opts = BackupOptions {
            full: spec.full,
            labels: spec.labels.clone(),
            groups: spec.groups.clone(),
            schedule: spec.schedule.clone(),
            ..Default::default()
        };
        let clock = std::time::Instant::now();
        h.progress.set_phase("taking snapshot");
        let snap = source.take().await.map_err(|e| e.to_string())?;
        let snapshot_s = clock.elapsed().as_secs_f64();
        let result = tokio::select! {
            r = backup_timed(repo, &snap, &opts, h.progress.clone()) => r.map_err(|e| e.to_string()),
            () = h.cancel.cancelled() => Err("cancelled".to_string()),
        };
        if let Err(e) = source.release(&snap.id).await {
            tracing::warn!(snapshot = %snap.id, error = %e, "could not release the backup snapshot");
        }
        let (m, mut t) = result?;
        t.snapshot_s = snapshot_s;
        Ok((m, t))
    }
}

/// A finished backup's figures, for its job record.
pub fn record_backup(r: &mut crate::jobs::JobRecord, m: &Manifest, timings: Value) {
    r.snapshot = Some(m.id.clone());
    r.bytes_read = m.stats.new_bytes;
    r.bytes_uploaded = m.stats.uploaded_bytes;
    r.detail = Some(json!({"stats": m.stats, "timings": timings, "groups": m.groups}));
}

/// Routes for backups.
pub fn routes(backups: Arc<Backups>) -> Router {
    Router::new()
        .route("/api/v1/backups", post(start).get(list))
        .with_state(backups)
}

fn repo_settings(b: &Backups) -> Result<RepoSettings, ApiError> {
    b.repo.clone().ok_or_else(|| {
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

/// The key API backups share: one at a time.
const API_KEY: &str = "api-backup";

async fn start(
    State(b): State<Arc<Backups>>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = parse_request(&body)?;
    let settings = repo_settings(&b)?;
    if b.jobs.is_running(API_KEY) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "a backup job is already running",
        ));
    }
    let unlock_started = std::time::Instant::now();
    let (repo, unlocked) = b
        .repository(&settings)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e))?;
    let unlock_s = unlock_started.elapsed().as_secs_f64();
    let h = b
        .jobs
        .begin(JobKind::Backup, API_KEY, None, "api")
        .map_err(|_| ApiError::new(StatusCode::CONFLICT, "a backup job is already running"))?;
    let id = h.id.clone();
    let spec = BackupSpec {
        full: req.full,
        labels: req.labels,
        groups: req.groups.into_iter().collect(),
        schedule: None,
    };
    let b2 = b.clone();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let result = b2.run_once(repo, &spec, &h).await;
        let run_s = started.elapsed().as_secs_f64();
        if result.is_err() {
            b2.forget(&settings.url).await;
        }
        b2.jobs.finish(h, |r| match result {
            Ok((m, phases)) => {
                let mut t =
                    json!({"unlock_s": unlock_s, "key_cached": !unlocked, "backup_s": run_s});
                if let (Some(t), Ok(Value::Object(p))) =
                    (t.as_object_mut(), serde_json::to_value(phases))
                {
                    t.extend(p);
                }
                record_backup(r, &m, t);
                tracing::info!(job = %r.id, snapshot = %m.id, "backup job finished");
            }
            Err(e) => {
                r.state = JobState::Failed;
                tracing::warn!(job = %r.id, error = %e, "backup job failed");
                r.error = Some(e);
            }
        });
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job": id, "status": format!("/api/v1/jobs/{id}")})),
    ))
}

async fn list(State(b): State<Arc<Backups>>) -> Result<Json<Value>, ApiError> {
    let settings = repo_settings(&b)?;
    let url = settings.url.clone();
    let (repo, _) = b
        .repository(&settings)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e))?;
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
                "labels": m.labels, "groups": m.groups, "schedule": m.schedule,
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
