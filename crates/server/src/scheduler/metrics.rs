//! Per-schedule series in `/metrics` (all labelled `schedule`): what the alerting rules in
//! `docs/alerts.yml` watch.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type L = Vec<(&'static str, String)>;
type F64 = Gauge<f64, AtomicU64>;

#[derive(Default, Clone)]
pub struct ScheduleMetrics {
    pub last_success: Family<L, F64>,
    pub last_attempt: Family<L, F64>,
    pub last_outcome: Family<L, Gauge>,
    pub duration: Family<L, F64>,
    pub read_bytes: Family<L, Counter>,
    pub uploaded_bytes: Family<L, Counter>,
    pub runs: Family<L, Counter>,
    pub failures: Family<L, Counter>,
    pub next_run: Family<L, F64>,
    pub snapshots_kept: Family<L, Gauge>,
    pub repo_bytes: Family<L, Gauge>,
    pub repo_up: Family<L, Gauge>,
    pub drill_last_success: Family<L, F64>,
    pub drill_last_outcome: Family<L, Gauge>,
    pub drill_duration: Family<L, F64>,
    pub drill_runs: Family<L, Counter>,
    pub drill_failures: Family<L, Counter>,
}

pub fn label(schedule: &str) -> L {
    vec![("schedule", schedule.to_string())]
}

impl ScheduleMetrics {
    /// Registers every family (names under the registry's `strata_` prefix).
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "backup_last_success_timestamp_seconds",
            "When the schedule's last successful backup finished (Unix seconds)",
            self.last_success.clone(),
        );
        r.register(
            "backup_last_attempt_timestamp_seconds",
            "When the schedule's last backup attempt finished (Unix seconds)",
            self.last_attempt.clone(),
        );
        r.register(
            "backup_last_outcome",
            "1 when the schedule's last backup job succeeded, 0 when it failed",
            self.last_outcome.clone(),
        );
        r.register(
            "backup_last_duration_seconds",
            "How long the schedule's last backup job took",
            self.duration.clone(),
        );
        r.register(
            "backup_read_bytes",
            "Bytes of new files the schedule's backups read",
            self.read_bytes.clone(),
        );
        r.register(
            "backup_uploaded_bytes",
            "Stored bytes the schedule's backups uploaded",
            self.uploaded_bytes.clone(),
        );
        r.register(
            "backup_runs",
            "Backup jobs the schedule ran",
            self.runs.clone(),
        );
        r.register(
            "backup_failures",
            "Backup jobs of the schedule that failed (after their retries)",
            self.failures.clone(),
        );
        r.register(
            "backup_next_run_timestamp_seconds",
            "When the schedule's cron fires next (Unix seconds; 0: space trigger only)",
            self.next_run.clone(),
        );
        r.register(
            "backup_snapshots_kept",
            "Snapshots of the schedule in its repository after its last retention run",
            self.snapshots_kept.clone(),
        );
        r.register(
            "backup_repository_bytes",
            "Stored bytes of every object in the schedule's repository",
            self.repo_bytes.clone(),
        );
        r.register(
            "backup_repository_up",
            "1 when the schedule's repository answered its last job, 0 when it could not be reached or opened",
            self.repo_up.clone(),
        );
        r.register(
            "drill_last_success_timestamp_seconds",
            "When the schedule's last restore drill that passed finished (Unix seconds)",
            self.drill_last_success.clone(),
        );
        r.register(
            "drill_last_outcome",
            "1 when the schedule's last restore drill passed, 0 when it failed or could not run",
            self.drill_last_outcome.clone(),
        );
        r.register(
            "drill_last_duration_seconds",
            "How long the schedule's last restore drill took",
            self.drill_duration.clone(),
        );
        r.register(
            "drill_runs",
            "Restore drills of the schedule",
            self.drill_runs.clone(),
        );
        r.register(
            "drill_failures",
            "Restore drills of the schedule that failed",
            self.drill_failures.clone(),
        );
    }
}
