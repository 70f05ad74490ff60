//! What a schedule does besides its backups: copies to a second repository after each run
//! (`copy_to`) and restore drills on their own cron (`drill`). Each is a job in the jobs
//! history; a failure is recorded and measured, never fatal to the server.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use serde_json::json;
use strata_backup::Repository;
use strata_backup::drill::{DrillOptions, drill};
use strata_backup::settings::RepoSettings;

use super::metrics::label;
use super::{Schedule, Scheduler, locked, ts};
use crate::jobs::{JobKind, JobState};

impl Scheduler {
    /// Copies the schedule's snapshots the target lacks (after retention: only kept ones), as
    /// a copy job.
    pub(super) async fn copy(&self, s: &Schedule, repo: &Arc<Repository>, target: &RepoSettings) {
        let name = s.name().to_string();
        let Ok(h) = self.backups.jobs.begin(
            JobKind::Copy,
            &format!("copy:{}", target.url),
            Some(&name),
            "schedule",
        ) else {
            return;
        };
        let r = async {
            let (to, _) = self.backups.repository(target).await?;
            let (ms, _) = repo.manifests().await?;
            let ids: Vec<String> = ms
                .iter()
                .filter(|m| m.schedule.as_deref() == Some(&name))
                .map(|m| m.id.clone())
                .collect();
            strata_backup::copy::copy(repo, &to, &ids, &h.progress).await
        }
        .await;
        if r.is_err() {
            self.backups.forget(&target.url).await;
        }
        self.backups.jobs.finish(h, |rec| match r {
            Ok(report) => {
                rec.bytes_read = report.bytes_read;
                rec.bytes_uploaded = report.bytes_uploaded;
                rec.detail = Some(json!({"target": target.url, "report": report}));
            }
            Err(e) => {
                tracing::warn!(schedule = %name, error = %e, "scheduled copy failed");
                rec.state = JobState::Failed;
                rec.error = Some(e.to_string());
            }
        });
    }

    /// The repository of schedule `s` and the id of its newest snapshot (`None`: none yet).
    async fn newest_of(
        &self,
        s: &Schedule,
    ) -> strata_backup::Result<(Arc<Repository>, Option<String>)> {
        let (repo, _) = self.backups.repository(&s.repo).await?;
        let (ms, _) = repo.manifests().await?;
        let newest = ms
            .iter()
            .filter(|m| m.schedule.as_deref() == Some(s.name()))
            .max_by_key(|m| m.time)
            .map(|m| m.id.clone());
        Ok((repo, newest))
    }

    /// A restore drill of the schedule's newest snapshot, as a drill job. Before the schedule
    /// made any snapshot there is nothing to drill: skipped, not failed (the backup alerts
    /// cover a schedule that never succeeds).
    pub(super) async fn drill(&self, s: &Schedule) {
        let name = s.name().to_string();
        let found = self.newest_of(s).await;
        if let Ok((_, None)) = &found {
            tracing::info!(schedule = %name, "no snapshot of the schedule yet; drill skipped");
            return;
        }
        let Ok(h) = self.backups.jobs.begin(
            JobKind::Drill,
            &format!("drill:{name}"),
            Some(&name),
            "drill",
        ) else {
            tracing::info!(schedule = %name, "previous drill still going; drill skipped");
            return;
        };
        let l = label(&name);
        let started = Instant::now();
        let r = async {
            let (repo, newest) = found?;
            let newest = newest.unwrap_or_default();
            let opts = DrillOptions {
                parallelism: 4,
                ..Default::default()
            };
            drill(repo, &newest, &opts, h.progress.clone()).await
        }
        .await;
        let now = Utc::now();
        self.metrics.drill_runs.get_or_create(&l).inc();
        self.metrics
            .drill_duration
            .get_or_create(&l)
            .set(started.elapsed().as_secs_f64());
        let passed = matches!(&r, Ok(rep) if rep.passed);
        self.metrics
            .drill_last_outcome
            .get_or_create(&l)
            .set(i64::from(passed));
        if passed {
            self.metrics
                .drill_last_success
                .get_or_create(&l)
                .set(ts(now));
        } else {
            self.metrics.drill_failures.get_or_create(&l).inc();
        }
        let mut error = None;
        let rec = self
            .backups
            .jobs
            .finish(h, |rec| error = crate::drills::record(rec, &r));
        if let Some(e) = &error {
            tracing::warn!(schedule = %name, error = %e, "restore drill failed");
        }
        let mut st = locked(&s.state);
        st.last_drill = Some(now);
        st.last_drill_job = Some(rec.id.clone());
        st.last_drill_passed = Some(passed);
        st.last_drill_error = error;
    }
}
