//! `GET /api/v1/overview`: per schedule its last success, age and whether that is older than
//! the schedule promises, next run and last error; the point-in-time windows and archive lag;
//! the repository's size and growth; recent failed jobs and the last drill.
//! `GET /api/v1/repository`: the repository part alone.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use strata_backup::Manifest;
use strata_backup::archive::window::{ArchiveListing, Windows, rfc3339};

use super::{RepoApi, backup_error};
use crate::http::error::ApiError;
use crate::jobs::{Filter, JobKind, JobState};
use crate::scheduler::Schedule;

/// How many failed jobs the overview lists.
const RECENT_FAILURES: usize = 5;

/// Seconds between the next two runs of a cron schedule.
fn period_s(s: &Schedule, now: DateTime<Utc>) -> Option<i64> {
    let cron = s.checked.cron.as_ref()?;
    let a = cron.find_next_occurrence(&now, false).ok()?;
    let b = cron.find_next_occurrence(&a, false).ok()?;
    Some((b - a).num_seconds())
}

/// What a schedule promises and whether it keeps it: (overdue after, age, overdue). A cron
/// schedule promises a success at least every two periods plus its retries (one missed run is
/// red); a schedule with only a space trigger promises nothing about time; a schedule that
/// never succeeded is neither late nor on time yet.
fn promise(
    period_s: Option<i64>,
    retries: u32,
    retry_delay_s: u64,
    last_success: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (Option<i64>, Option<i64>, Option<bool>) {
    let retry_s = i64::try_from(retry_delay_s).unwrap_or(i64::MAX);
    let after = period_s.map(|p| {
        p.saturating_mul(2)
            .saturating_add(i64::from(retries).saturating_mul(retry_s))
    });
    let age = last_success.map(|t| (now - t).num_seconds().max(0));
    let overdue = match (after, age) {
        (Some(limit), Some(age)) => Some(age > limit),
        _ => None,
    };
    (after, age, overdue)
}

/// A schedule's promise and state, as the overview shows it.
pub fn schedule_status(s: &Schedule, now: DateTime<Utc>) -> Value {
    let st = s.state();
    let c = &s.checked;
    let period = period_s(s, now);
    let (overdue_after, age, overdue) = promise(
        period,
        c.retries,
        c.retry_delay.as_secs(),
        st.last_success,
        now,
    );
    json!({
        "name": s.name(),
        "cron": c.config.cron,
        "space_trigger_bytes": c.space_trigger,
        "groups": st.groups,
        "period_s": period,
        "overdue_after_s": overdue_after,
        "last_success": st.last_success,
        "age_s": age,
        "overdue": overdue,
        "next_run": st.next_run,
        "running": st.running,
        "last_job": st.last_job,
        "last_outcome": st.last_outcome,
        "last_error": st.last_error,
        "snapshots_kept": st.snapshots_kept,
        "retention": c.config.retention,
    })
}

/// Size and growth of the repository from its manifests (stored bytes of distinct objects;
/// growth: what the snapshots of the last day and week uploaded).
fn repository_figures(url: &str, ms: &[Manifest], damaged: usize, now: DateTime<Utc>) -> Value {
    let mut seen = HashSet::new();
    let stored: u64 = ms
        .iter()
        .flat_map(|m| m.files.iter())
        .filter(|f| seen.insert(f.object.as_str()))
        .map(|f| f.stored_size)
        .sum();
    let uploaded_since = |secs: i64| -> u64 {
        ms.iter()
            .filter(|m| (now - m.recorded_time()).num_seconds() <= secs)
            .map(|m| m.stats.uploaded_bytes)
            .sum()
    };
    let newest = ms.last();
    json!({
        "url": url,
        "snapshots": ms.len(),
        "damaged": damaged,
        "objects": seen.len(),
        "stored_bytes": stored,
        "growth_24h_bytes": uploaded_since(86_400),
        "growth_7d_bytes": uploaded_since(7 * 86_400),
        "newest": newest.map(|m| json!({
            "id": m.id, "time": m.recorded_time(), "bytes": m.stats.bytes,
            "age_s": (now - m.recorded_time()).num_seconds().max(0),
        })),
    })
}

fn windows_json(w: &Windows) -> Value {
    let windows: Vec<Value> = w
        .windows
        .iter()
        .map(|w| {
            json!({
                "node_id": w.node, "start": rfc3339(w.start_ns), "end": rfc3339(w.end_ns),
                "first_lsn": w.first_lsn, "last_lsn": w.last_lsn,
                "snapshots": w.anchors.iter().map(|a| &a.0).collect::<Vec<_>>(),
            })
        })
        .collect();
    let gaps: Vec<Value> = w
        .gaps
        .iter()
        .map(|g| json!({"node_id": g.node, "from": rfc3339(g.from_ns), "to": rfc3339(g.to_ns)}))
        .collect();
    json!({"windows": windows, "gaps": gaps})
}

fn archive_json(api: &RepoApi, now: DateTime<Utc>) -> Value {
    let Some(s) = &api.archive else {
        return json!({"enabled": false});
    };
    let now_ns = now.timestamp_nanos_opt().unwrap_or(i64::MAX);
    let time = |ns: i64| (ns > 0).then(|| rfc3339(ns));
    json!({
        "enabled": true,
        "lag_seconds": s.lag_seconds(now_ns),
        "window_start": time(s.window_start_ns.load(Ordering::Relaxed)),
        "window_end": time(s.window_end_ns.load(Ordering::Relaxed)),
        "archived_lsn": s.archived_lsn.load(Ordering::Relaxed),
        "objects_shipped": s.objects_shipped.load(Ordering::Relaxed),
        "bytes_shipped": s.bytes_shipped.load(Ordering::Relaxed),
        "failures": s.failures.load(Ordering::Relaxed),
        "gaps": s.gaps.load(Ordering::Relaxed),
    })
}

/// The repository's figures and windows, or the error that kept them from being read (the
/// overview shows the rest anyway).
async fn repository_part(api: &RepoApi, now: DateTime<Utc>) -> Result<(Value, Value), ApiError> {
    let repo = api.repo().await?;
    let (ms, bad) = repo.manifests().await.map_err(backup_error)?;
    let listing = ArchiveListing::load(&repo).await.map_err(backup_error)?;
    let windows = Windows::compute(&listing, &ms);
    Ok((
        repository_figures(repo.url(), &ms, bad.len(), now),
        windows_json(&windows),
    ))
}

pub async fn overview(State(api): State<RepoApi>) -> Json<Value> {
    let now = Utc::now();
    let schedules: Vec<Value> = api
        .schedules
        .schedules
        .iter()
        .map(|s| schedule_status(s, now))
        .collect();
    let jobs = &api.backups.jobs;
    let failures = jobs.list(&Filter {
        state: Some(JobState::Failed),
        limit: Some(RECENT_FAILURES),
        ..Default::default()
    });
    let last_drill = jobs
        .list(&Filter {
            kind: Some(JobKind::Drill),
            limit: Some(1),
            ..Default::default()
        })
        .into_iter()
        .next();
    let (repository, pitr, repository_error) = match repository_part(&api, now).await {
        Ok((r, w)) => (r, w, None),
        Err(e) => (Value::Null, Value::Null, e.body.get("error").cloned()),
    };
    Json(json!({
        "time": now,
        "node_id": api.backups.engine.node_id(),
        "schedules": schedules,
        "repository": repository,
        "repository_error": repository_error,
        "pitr": pitr,
        "archive": archive_json(&api, now),
        "recent_failures": failures,
        "last_drill": last_drill,
    }))
}

pub async fn repository(State(api): State<RepoApi>) -> Result<Json<Value>, ApiError> {
    let now = Utc::now();
    let repo = api.repo().await?;
    let cfg = repo.config();
    let (r, w) = repository_part(&api, now).await?;
    Ok(Json(json!({
        "repository": r,
        "encryption": cfg.encryption,
        "compression": cfg.compression,
        "pitr": w,
    })))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_schedule_is_late_after_one_missed_run_and_its_retries() {
        let now = t("2026-01-01T12:00:00Z");
        // Hourly, 2 retries 5 minutes apart: late after 2 h 10 min.
        let hourly = |last: &str| promise(Some(3600), 2, 300, Some(t(last)), now);
        assert_eq!(
            hourly("2026-01-01T11:00:00Z"),
            (Some(7800), Some(3600), Some(false))
        );
        assert_eq!(hourly("2026-01-01T09:50:00Z").2, Some(false));
        assert_eq!(hourly("2026-01-01T09:49:59Z").2, Some(true));
        // Never succeeded, or no cron: no verdict.
        assert_eq!(
            promise(Some(3600), 0, 0, None, now),
            (Some(7200), None, None)
        );
        assert_eq!(
            promise(None, 0, 0, Some(t("2020-01-01T00:00:00Z")), now).2,
            None
        );
        // A success stamped in the future (clock skew) is age 0, not negative.
        assert_eq!(hourly("2026-01-01T13:00:00Z").1, Some(0));
    }
}
