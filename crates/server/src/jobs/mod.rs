//! Jobs: every backup, prune, copy and drill the server runs (scheduled, through the API or
//! by hand) is a job with a record in a persisted history ([`history`]) that survives
//! restarts: kind, schedule, trigger, start, end, outcome, attempts, bytes, error, details.
//!
//! [`Jobs::begin`] reserves a job's *key* (its schedule's name, or the API's backup key), so
//! two runs of one schedule never overlap; [`JobHandle`] carries the job's cancellation flag
//! and progress until [`Jobs::finish`]. A job still `running` in the history at start-up was
//! cut off by a crash or a kill: it is recorded as `interrupted`. The HTTP side is in
//! [`http`].

pub mod history;
pub mod http;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_backup::Progress;

pub use history::{History, HistoryError};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    #[default]
    Backup,
    Prune,
    Copy,
    Drill,
    /// `strata verify` of one snapshot, started from the API (`repo_api`).
    Verify,
    /// An online restore (`POST /api/v1/restores`).
    Restore,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Backup => "backup",
            JobKind::Prune => "prune",
            JobKind::Copy => "copy",
            JobKind::Drill => "drill",
            JobKind::Verify => "verify",
            JobKind::Restore => "restore",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    #[default]
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// Running when the server stopped without finishing it (crash, kill).
    Interrupted,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Interrupted => "interrupted",
        }
    }
}

/// A job as recorded (and answered by `GET /api/v1/jobs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobRecord {
    pub id: String,
    pub kind: JobKind,
    /// The schedule that ran it; absent for API and manual jobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// What started it: `api`, `cron`, `space`, `full` (a schedule's re-read run), `retry`.
    pub trigger: String,
    pub state: JobState,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    /// Attempts made (1 unless retried).
    pub attempts: u32,
    /// The snapshot the job wrote (backup) or checked (drill).
    pub snapshot: Option<String>,
    /// Bytes read from the source (files backed up, objects copied or restored).
    pub bytes_read: u64,
    /// Stored bytes uploaded to a repository.
    pub bytes_uploaded: u64,
    pub error: Option<String>,
    /// Kind-specific details: backup stats and timings, prune report, drill comparison.
    pub detail: Option<Value>,
}

impl JobRecord {
    pub fn seconds(&self) -> Option<f64> {
        let (s, f) = (self.started?, self.finished?);
        Some((f - s).num_milliseconds() as f64 / 1000.0)
    }
}

/// Cancellation of a running job: a flag its work checks, and a notification for awaits.
#[derive(Default)]
pub struct Cancel {
    flag: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Cancel {
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        loop {
            let n = self.notify.notified();
            if self.is_cancelled() {
                return;
            }
            n.await;
        }
    }
}

/// What a running job holds.
pub struct JobHandle {
    pub id: String,
    pub cancel: Arc<Cancel>,
    pub progress: Arc<Progress>,
    key: String,
}

struct Live {
    record: JobRecord,
    cancel: Arc<Cancel>,
    progress: Arc<Progress>,
}

struct State {
    history: History,
    /// Finished jobs, oldest first, with their final progress when they ran in this process.
    done: Vec<(JobRecord, Option<Arc<Progress>>)>,
    live: HashMap<String, Live>,
    keys: HashSet<String>,
    seq: u64,
}

pub struct Jobs {
    state: Mutex<State>,
}

#[derive(Debug, thiserror::Error)]
#[error("a {kind} job of {key} is already running ({id})")]
pub struct Busy {
    pub kind: &'static str,
    pub key: String,
    pub id: String,
}

/// Filters of `GET /api/v1/jobs`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    pub kind: Option<JobKind>,
    pub schedule: Option<String>,
    pub state: Option<JobState>,
    /// Newest first, at most this many (default 100).
    pub limit: Option<usize>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Jobs {
    /// Opens the history at `path`; jobs it shows running were interrupted.
    pub fn open(path: &Path) -> Result<Arc<Jobs>, HistoryError> {
        let (mut history, mut done) = History::open(path)?;
        for j in done.iter_mut().filter(|j| j.state == JobState::Running) {
            j.state = JobState::Interrupted;
            j.error = Some("the server stopped before the job finished".into());
            history.append(j)?;
        }
        let seq = done
            .iter()
            .filter_map(|j| j.id.rsplit_once('-')?.1.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        let done = done.into_iter().map(|j| (j, None)).collect();
        Ok(Arc::new(Jobs {
            state: Mutex::new(State {
                history,
                done,
                live: HashMap::new(),
                keys: HashSet::new(),
                seq,
            }),
        }))
    }

    /// Starts a job unless another job holds `key`; records it as running.
    pub fn begin(
        &self,
        kind: JobKind,
        key: &str,
        schedule: Option<&str>,
        trigger: &str,
    ) -> Result<JobHandle, Busy> {
        let mut st = locked(&self.state);
        if st.keys.contains(key) {
            let id = st
                .live
                .values()
                .find(|l| l.record.schedule.as_deref() == schedule)
                .map(|l| l.record.id.clone())
                .unwrap_or_default();
            return Err(Busy {
                kind: kind.as_str(),
                key: key.to_string(),
                id,
            });
        }
        st.seq += 1;
        let id = format!("{}-{}", kind.as_str(), st.seq);
        let record = JobRecord {
            id: id.clone(),
            kind,
            schedule: schedule.map(str::to_string),
            trigger: trigger.to_string(),
            state: JobState::Running,
            started: Some(Utc::now()),
            attempts: 1,
            ..Default::default()
        };
        if let Err(e) = st.history.append(&record) {
            // The job runs anyway: the history is a record, not a precondition.
            tracing::warn!(error = %e, "cannot record a job");
        }
        let cancel = Arc::new(Cancel::default());
        let progress = Arc::new(Progress::default());
        st.keys.insert(key.to_string());
        st.live.insert(
            id.clone(),
            Live {
                record,
                cancel: cancel.clone(),
                progress: progress.clone(),
            },
        );
        Ok(JobHandle {
            id,
            cancel,
            progress,
            key: key.to_string(),
        })
    }

    /// Updates a running job's record (attempts, bytes so far) and persists it.
    pub fn update(&self, h: &JobHandle, f: impl FnOnce(&mut JobRecord)) {
        let mut st = locked(&self.state);
        let State { live, history, .. } = &mut *st;
        if let Some(l) = live.get_mut(&h.id) {
            f(&mut l.record);
            if let Err(e) = history.append(&l.record) {
                tracing::warn!(error = %e, "cannot record a job");
            }
        }
    }

    /// Ends a job: `f` fills in the outcome; the key is free again.
    pub fn finish(&self, h: JobHandle, f: impl FnOnce(&mut JobRecord)) -> JobRecord {
        let mut st = locked(&self.state);
        st.keys.remove(&h.key);
        let Some(mut l) = st.live.remove(&h.id) else {
            return JobRecord::default();
        };
        f(&mut l.record);
        if l.record.state == JobState::Running {
            l.record.state = JobState::Succeeded;
        }
        if h.cancel.is_cancelled() && l.record.state == JobState::Failed {
            l.record.state = JobState::Cancelled;
        }
        l.record.finished = Some(Utc::now());
        if let Err(e) = st.history.append(&l.record) {
            tracing::warn!(error = %e, "cannot record a job");
        }
        st.done.push((l.record.clone(), Some(l.progress)));
        let extra = st.done.len().saturating_sub(history::KEEP);
        st.done.drain(..extra);
        l.record
    }

    /// Asks a running job to stop. `None`: no such job; `Some(false)`: it already ended.
    pub fn cancel(&self, id: &str) -> Option<bool> {
        let st = locked(&self.state);
        if let Some(l) = st.live.get(id) {
            l.cancel.cancel();
            return Some(true);
        }
        st.done.iter().any(|(j, _)| j.id == id).then_some(false)
    }

    /// One job, with its progress while it runs.
    pub fn get(&self, id: &str) -> Option<(JobRecord, Option<Arc<Progress>>)> {
        let st = locked(&self.state);
        if let Some(l) = st.live.get(id) {
            return Some((l.record.clone(), Some(l.progress.clone())));
        }
        st.done
            .iter()
            .rev()
            .find(|(j, _)| j.id == id)
            .map(|(j, p)| (j.clone(), p.clone()))
    }

    /// Jobs matching `f`, newest first.
    pub fn list(&self, f: &Filter) -> Vec<JobRecord> {
        let st = locked(&self.state);
        let mut all: Vec<JobRecord> = st
            .done
            .iter()
            .map(|(j, _)| j.clone())
            .chain(st.live.values().map(|l| l.record.clone()))
            .filter(|j| f.kind.is_none_or(|k| j.kind == k))
            .filter(|j| f.state.is_none_or(|s| j.state == s))
            .filter(|j| {
                f.schedule
                    .as_deref()
                    .is_none_or(|s| j.schedule.as_deref() == Some(s))
            })
            .collect();
        all.sort_by(|a, b| b.started.cmp(&a.started).then(b.id.cmp(&a.id)));
        all.truncate(f.limit.unwrap_or(100));
        all
    }

    /// Whether a job holds `key` now.
    pub fn is_running(&self, key: &str) -> bool {
        locked(&self.state).keys.contains(key)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_run_per_key_history_survives_and_running_becomes_interrupted() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("jobs.log");
        let jobs = Jobs::open(&p).unwrap();
        let a = jobs
            .begin(JobKind::Backup, "schedule:hot", Some("hot"), "cron")
            .unwrap();
        let busy = jobs
            .begin(JobKind::Backup, "schedule:hot", Some("hot"), "cron")
            .err()
            .unwrap();
        assert_eq!(busy.id, a.id);
        let b = jobs
            .begin(JobKind::Backup, "schedule:cold", Some("cold"), "cron")
            .unwrap();
        assert_eq!(jobs.cancel(&b.id), Some(true));
        assert!(b.cancel.is_cancelled());
        jobs.finish(b, |r| {
            r.state = JobState::Failed;
            r.error = Some("cancelled".into());
        });
        let first = a.id.clone();
        let done = jobs.finish(a, |r| r.bytes_uploaded = 42);
        assert_eq!(done.state, JobState::Succeeded);
        let c = jobs.begin(JobKind::Drill, "drill", None, "api").unwrap();
        drop(jobs);
        let _ = c;

        let jobs = Jobs::open(&p).unwrap();
        let all = jobs.list(&Filter::default());
        assert_eq!(all.len(), 3);
        let by_id = |id: &str| all.iter().find(|j| j.id == id).unwrap().clone();
        assert_eq!(by_id(&first).bytes_uploaded, 42);
        assert_eq!(by_id("backup-2").state, JobState::Cancelled);
        assert_eq!(by_id("drill-3").state, JobState::Interrupted);
        let hot = jobs.list(&Filter {
            schedule: Some("hot".into()),
            ..Default::default()
        });
        assert_eq!(hot.len(), 1);
        let failed = jobs.list(&Filter {
            state: Some(JobState::Cancelled),
            ..Default::default()
        });
        assert_eq!(failed.len(), 1);
        // Ids go on after the history's highest.
        let next = jobs.begin(JobKind::Backup, "k", None, "api").unwrap();
        assert_eq!(next.id, "backup-4");
    }
}
