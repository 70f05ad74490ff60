//! The scheduler: the `[[schedule]]` tables of the server's configuration, run by the server
//! itself (no cron, no scripts around it).
//!
//! A schedule fires on its cron (seconds resolution), on its space trigger (that many bytes
//! written to the server's WAL since the start of its last successful backup; counted from
//! the server's start after a restart), and on its `full` cron (a run that re-reads every
//! file and repairs the repository's copies, `strata backup --full`). A run is a backup job
//! of the schedule's groups (by name, and by `backup_tier` label, resolved at each run) into
//! the schedule's repository, retried per its policy, then its retention (a prune job scoped
//! to the schedule's own snapshots). Two runs of one schedule never overlap: a trigger that
//! fires while the previous run goes on is skipped (a `full` one is kept for the next run).
//!
//! [`Scheduler::prepare`] refuses a schedule whose groups or tiers match nothing or whose
//! repository cannot be opened, naming the key and the fix; later, an unreachable repository
//! fails jobs (and sets `strata_backup_repository_up` to 0), never the server.

pub mod config;
mod followups;
pub mod http;
pub mod metrics;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use strata_backup::Repository;
use strata_backup::prune::{Scope, plan_prune_scoped, prune};
use strata_backup::settings::RepoSettings;

use crate::backup_jobs::{BackupSpec, Backups, record_backup};
use crate::jobs::{JobKind, JobState};
use config::{Checked, ScheduleError};
use metrics::{ScheduleMetrics, label};

/// How often triggers are looked at.
const TICK: Duration = Duration::from_millis(250);

/// A schedule's live state, as `GET /api/v1/schedules` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunState {
    pub next_run: Option<DateTime<Utc>>,
    pub next_full: Option<DateTime<Utc>>,
    /// A `full` run is due at the next run.
    pub full_pending: bool,
    /// Bytes written since the start of the last successful backup (space trigger).
    pub bytes_since_backup: u64,
    pub running: Option<String>,
    pub last_job: Option<String>,
    pub last_outcome: Option<String>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub snapshots_kept: Option<usize>,
    pub groups: Vec<String>,
    /// When the schedule's next restore drill runs (`drill`).
    pub next_drill: Option<DateTime<Utc>>,
    /// The last restore drill: when it finished, its job, whether it passed, and why not.
    pub last_drill: Option<DateTime<Utc>>,
    pub last_drill_job: Option<String>,
    pub last_drill_passed: Option<bool>,
    pub last_drill_error: Option<String>,
    #[serde(skip)]
    wal_base: u64,
    #[serde(skip)]
    not_before: Option<Instant>,
}

pub struct Schedule {
    pub checked: Checked,
    pub repo: RepoSettings,
    state: Mutex<RunState>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Schedule {
    pub fn name(&self) -> &str {
        &self.checked.config.name
    }

    fn key(&self) -> String {
        format!("schedule:{}", self.name())
    }

    pub fn state(&self) -> RunState {
        locked(&self.state).clone()
    }
}

/// The groups a schedule covers now: its named groups and every group whose `backup_tier`
/// is one of its tiers. Empty (neither given): every group.
pub fn resolve_groups(
    c: &config::ScheduleConfig,
    catalog: &strata_engine::model::Catalog,
) -> Result<BTreeSet<String>, ScheduleError> {
    let refuse = |key, problem: String, fix: &str| ScheduleError {
        name: c.name.clone(),
        key,
        problem,
        fix: fix.to_string(),
    };
    let mut out = BTreeSet::new();
    for g in &c.groups {
        if !catalog.groups.iter().any(|x| &x.name == g) {
            return Err(refuse(
                "groups",
                format!("group '{g}' does not exist"),
                "create it (write to it or PUT /api/v1/groups/NAME) or remove it from the schedule",
            ));
        }
        out.insert(g.clone());
    }
    for t in &c.tiers {
        let n = out.len();
        out.extend(
            catalog
                .groups
                .iter()
                .filter(|g| &g.settings.backup_tier == t)
                .map(|g| g.name.clone()),
        );
        if out.len() == n && !catalog.groups.iter().any(|g| &g.settings.backup_tier == t) {
            return Err(refuse(
                "tiers",
                format!("no group has backup_tier '{t}'"),
                "set a group's backup_tier (PUT /api/v1/groups/NAME) or remove the tier from the schedule",
            ));
        }
    }
    Ok(out)
}

pub struct Scheduler {
    pub schedules: Vec<Arc<Schedule>>,
    backups: Arc<Backups>,
    metrics: ScheduleMetrics,
}

fn ts(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

impl Scheduler {
    /// Checks every schedule against the engine and its repository; refuses the first bad one.
    pub async fn prepare(
        checked: Vec<Checked>,
        backups: Arc<Backups>,
        default_repo: &RepoSettings,
        metrics: ScheduleMetrics,
    ) -> Result<Arc<Scheduler>, ScheduleError> {
        let catalog = backups.engine.catalog();
        let wal = backups.engine.stats().wal_bytes;
        let mut schedules = Vec::new();
        for c in checked {
            let groups = resolve_groups(&c.config, &catalog)?;
            let repo = c
                .config
                .repository
                .clone()
                .unwrap_or_else(|| default_repo.clone());
            if let Err(e) = backups.repository(&repo).await {
                return Err(ScheduleError {
                    name: c.config.name.clone(),
                    key: "repository",
                    problem: format!("{} cannot be opened ({e})", repo.url),
                    fix:
                        "create it with `strata repo init`, or fix its URL, password or credentials"
                            .into(),
                });
            }
            if let Some(t) = &c.config.copy_to
                && let Err(e) = backups.repository(t).await
            {
                return Err(ScheduleError {
                    name: c.config.name.clone(),
                    key: "copy_to",
                    problem: format!("{} cannot be opened ({e})", t.url),
                    fix:
                        "create it with `strata repo init`, or fix its URL, password or credentials"
                            .into(),
                });
            }
            let now = Utc::now();
            let state = RunState {
                next_run: c
                    .cron
                    .as_ref()
                    .and_then(|k| k.find_next_occurrence(&now, false).ok()),
                next_full: c
                    .full
                    .as_ref()
                    .and_then(|k| k.find_next_occurrence(&now, false).ok()),
                next_drill: c
                    .drill
                    .as_ref()
                    .and_then(|k| k.find_next_occurrence(&now, false).ok()),
                groups: groups.into_iter().collect(),
                wal_base: wal,
                ..Default::default()
            };
            let l = label(&c.config.name);
            metrics.failures.get_or_create(&l).inc_by(0);
            metrics.runs.get_or_create(&l).inc_by(0);
            metrics
                .next_run
                .get_or_create(&l)
                .set(state.next_run.map_or(0.0, ts));
            metrics.repo_up.get_or_create(&l).set(1);
            schedules.push(Arc::new(Schedule {
                checked: c,
                repo,
                state: Mutex::new(state),
            }));
        }
        Ok(Arc::new(Scheduler {
            schedules,
            backups,
            metrics,
        }))
    }

    /// Runs the trigger loop until the runtime stops.
    pub fn spawn(self: &Arc<Self>) {
        if self.schedules.is_empty() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                me.tick();
                tokio::time::sleep(TICK).await;
            }
        });
    }

    fn tick(self: &Arc<Self>) {
        let now = Utc::now();
        let wal = if self
            .schedules
            .iter()
            .any(|s| s.checked.space_trigger.is_some())
        {
            Some(self.backups.engine.stats().wal_bytes)
        } else {
            None
        };
        for s in &self.schedules {
            let trigger = {
                let mut st = locked(&s.state);
                if let Some(w) = wal {
                    st.bytes_since_backup = w.saturating_sub(st.wal_base);
                }
                let mut trigger = None;
                if st.next_run.is_some_and(|t| t <= now) {
                    st.next_run = s
                        .checked
                        .cron
                        .as_ref()
                        .and_then(|k| k.find_next_occurrence(&now, false).ok());
                    self.metrics
                        .next_run
                        .get_or_create(&label(s.name()))
                        .set(st.next_run.map_or(0.0, ts));
                    trigger = Some("cron");
                }
                if st.next_full.is_some_and(|t| t <= now) {
                    st.next_full = s
                        .checked
                        .full
                        .as_ref()
                        .and_then(|k| k.find_next_occurrence(&now, false).ok());
                    st.full_pending = true;
                    trigger = Some("full");
                }
                if st.next_drill.is_some_and(|t| t <= now) {
                    st.next_drill = s
                        .checked
                        .drill
                        .as_ref()
                        .and_then(|k| k.find_next_occurrence(&now, false).ok());
                    let (me, s) = (self.clone(), s.clone());
                    tokio::spawn(async move { me.drill(&s).await });
                }
                let backoff = st.not_before.is_some_and(|t| Instant::now() < t);
                if trigger.is_none()
                    && !backoff
                    && s.checked
                        .space_trigger
                        .is_some_and(|n| st.bytes_since_backup >= n)
                {
                    trigger = Some("space");
                }
                trigger
            };
            let Some(trigger) = trigger else { continue };
            if self.backups.jobs.is_running(&s.key()) {
                tracing::info!(
                    schedule = s.name(),
                    trigger,
                    "previous run still going; trigger skipped"
                );
                continue;
            }
            let (me, s) = (self.clone(), s.clone());
            tokio::spawn(async move { me.run(s, trigger).await });
        }
    }

    /// One run of a schedule: the backup job (with retries), then its retention.
    pub async fn run(self: Arc<Self>, s: Arc<Schedule>, trigger: &'static str) {
        let name = s.name().to_string();
        let Ok(h) = self
            .backups
            .jobs
            .begin(JobKind::Backup, &s.key(), Some(&name), trigger)
        else {
            return;
        };
        let l = label(&name);
        let (full, wal_start) = {
            let mut st = locked(&s.state);
            st.running = Some(h.id.clone());
            st.last_job = Some(h.id.clone());
            (
                std::mem::take(&mut st.full_pending),
                st.wal_base + st.bytes_since_backup,
            )
        };
        let catalog = self.backups.engine.catalog();
        let started = Instant::now();
        let mut attempt = 1;
        let result = loop {
            let r = match resolve_groups(&s.checked.config, &catalog) {
                Err(e) => Err(e.to_string()),
                Ok(groups) => {
                    locked(&s.state).groups = groups.iter().cloned().collect();
                    let spec = BackupSpec {
                        full,
                        labels: Default::default(),
                        groups,
                        schedule: Some(name.clone()),
                    };
                    match self.backups.repository(&s.repo).await {
                        Err(e) => {
                            self.metrics.repo_up.get_or_create(&l).set(0);
                            Err(format!("repository {}: {e}", s.repo.url))
                        }
                        Ok((repo, _)) => {
                            self.metrics.repo_up.get_or_create(&l).set(1);
                            let r = self.backups.run_once(repo.clone(), &spec, &h).await;
                            r.map(|m| (m, repo))
                        }
                    }
                }
            };
            match r {
                Ok(v) => break Ok(v),
                Err(e) if h.cancel.is_cancelled() || attempt > s.checked.retries => break Err(e),
                Err(e) => {
                    tracing::warn!(schedule = %name, attempt, error = %e, "scheduled backup failed; retrying");
                    self.backups.forget(&s.repo.url).await;
                    tokio::select! {
                        () = tokio::time::sleep(s.checked.retry_delay) => {}
                        () = h.cancel.cancelled() => break Err(e),
                    }
                    attempt += 1;
                    self.backups.jobs.update(&h, |r| {
                        r.attempts = attempt;
                        r.trigger = format!("{trigger}+retry");
                        r.error = Some(e.clone());
                    });
                }
            }
        };
        let took = started.elapsed().as_secs_f64();
        let now = Utc::now();
        self.metrics.runs.get_or_create(&l).inc();
        self.metrics.duration.get_or_create(&l).set(took);
        self.metrics.last_attempt.get_or_create(&l).set(ts(now));
        let repo = match result {
            Ok(((m, phases), repo)) => {
                self.metrics.last_outcome.get_or_create(&l).set(1);
                self.metrics.last_success.get_or_create(&l).set(ts(now));
                self.metrics
                    .read_bytes
                    .get_or_create(&l)
                    .inc_by(m.stats.new_bytes);
                self.metrics
                    .uploaded_bytes
                    .get_or_create(&l)
                    .inc_by(m.stats.uploaded_bytes);
                let rec = self.backups.jobs.finish(h, |r| {
                    let t = serde_json::to_value(phases).unwrap_or_default();
                    record_backup(r, &m, t);
                    r.error = None;
                    if let Some(d) = r.detail.as_mut() {
                        d["full"] = json!(full);
                    }
                });
                let mut st = locked(&s.state);
                st.wal_base = wal_start;
                st.bytes_since_backup = 0;
                st.last_success = Some(now);
                st.last_outcome = Some(rec.state.as_str().to_string());
                st.last_error = None;
                st.not_before = None;
                Some(repo)
            }
            Err(e) => {
                self.metrics.last_outcome.get_or_create(&l).set(0);
                self.metrics.failures.get_or_create(&l).inc();
                self.backups.forget(&s.repo.url).await;
                tracing::warn!(schedule = %name, error = %e, "scheduled backup failed");
                let rec = self.backups.jobs.finish(h, |r| {
                    r.state = JobState::Failed;
                    r.error = Some(e.clone());
                });
                let mut st = locked(&s.state);
                st.last_outcome = Some(rec.state.as_str().to_string());
                st.last_error = Some(e);
                st.not_before = Some(Instant::now() + s.checked.retry_delay);
                if full {
                    st.full_pending = true;
                }
                None
            }
        };
        locked(&s.state).running = None;
        if let Some(repo) = repo {
            self.retention(&s, &repo).await;
            if let Some(target) = &s.checked.config.copy_to {
                self.copy(&s, &repo, target).await;
            }
        }
    }

    /// The schedule's retention over its own snapshots, as a prune job; then the repository
    /// figures for the metrics.
    async fn retention(&self, s: &Schedule, repo: &Arc<Repository>) {
        let name = s.name().to_string();
        let l = label(&name);
        if let Some((policy, grace)) = &s.checked.retention {
            // One prune per repository at a time: wait for another schedule's (a minute at
            // most), so that every run applies its retention.
            let key = format!("prune:{}", s.repo.url);
            let mut begun = self
                .backups
                .jobs
                .begin(JobKind::Prune, &key, Some(&name), "retention");
            let waited = Instant::now();
            while begun.is_err() && waited.elapsed() < Duration::from_secs(60) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                begun = self
                    .backups
                    .jobs
                    .begin(JobKind::Prune, &key, Some(&name), "retention");
            }
            match begun {
                Err(busy) => tracing::info!(schedule = %name, %busy, "retention skipped this time"),
                Ok(h) => {
                    let scope = Scope {
                        schedule: Some(name.clone()),
                    };
                    let r = async {
                        let plan = plan_prune_scoped(repo, policy, *grace, &scope).await?;
                        let kept = plan.decisions.iter().filter(|d| d.keep).count();
                        let report = prune(repo, &plan).await?;
                        Ok::<_, strata_backup::Error>((kept, report))
                    }
                    .await;
                    match r {
                        Ok((kept, report)) => {
                            locked(&s.state).snapshots_kept = Some(kept);
                            self.metrics
                                .snapshots_kept
                                .get_or_create(&l)
                                .set(kept as i64);
                            self.backups.jobs.finish(h, |r| {
                                r.detail = Some(json!({"kept": kept, "report": report}));
                            });
                        }
                        Err(e) => {
                            tracing::warn!(schedule = %name, error = %e, "retention failed");
                            self.backups.jobs.finish(h, |r| {
                                r.state = JobState::Failed;
                                r.error = Some(e.to_string());
                            });
                        }
                    }
                }
            }
        } else if let Ok((ms, _)) = repo.manifests().await {
            let kept = ms
                .iter()
                .filter(|m| m.schedule.as_deref() == Some(&name))
                .count();
            locked(&s.state).snapshots_kept = Some(kept);
            self.metrics
                .snapshots_kept
                .get_or_create(&l)
                .set(kept as i64);
        }
        if let Ok(objects) = repo.list_objects().await {
            let bytes: u64 = objects.values().map(|o| o.size).sum();
            self.metrics
                .repo_bytes
                .get_or_create(&l)
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }
}
