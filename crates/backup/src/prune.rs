//! `strata prune`: calendar retention by recorded time, then garbage collection.
//!
//! [`apply_policy`] is a pure function (pinned by tests): snapshots newest first; `keep-last N`
//! keeps the N newest; `keep-hourly/daily/weekly/monthly N` keep the newest snapshot of each of
//! the N most recent hours/days/ISO weeks/months (UTC) that have one; `keep-within D` keeps every
//! snapshot recorded within D of the newest. A snapshot is kept if any rule keeps it, and the
//! reasons are reported.
//!
//! Pinned snapshots ([`crate::gc::pin`]) are always kept (reason `pinned`). A [`Scope`]
//! limits the policy to one schedule's snapshots (the server's automatic retention); other
//! snapshots are neither counted nor removed.
//!
//! [`prune`] deletes manifests first, then collects garbage in two phases with
//! [`crate::gc::collect`] (mark, then delete what stayed unreferenced past the grace period,
//! never while a backup runs). Hook point for other retention (the WAL archive): after the
//! manifests, before the collection.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::repo::Repository;

#[derive(Debug, Clone, Default)]
pub struct RetentionPolicy {
    pub keep_last: Option<usize>,
    pub keep_hourly: Option<usize>,
    pub keep_daily: Option<usize>,
    pub keep_weekly: Option<usize>,
    pub keep_monthly: Option<usize>,
    pub keep_within: Option<Duration>,
    /// Allow a plan that removes every snapshot (`--allow-empty`). Without it, a policy that
    /// keeps nothing (`--keep-last 0`) or a plan that would leave no snapshot is refused.
    pub allow_empty: bool,
}

impl RetentionPolicy {
    pub fn is_empty(&self) -> bool {
        self.keep_last.is_none()
            && self.keep_hourly.is_none()
            && self.keep_daily.is_none()
            && self.keep_weekly.is_none()
            && self.keep_monthly.is_none()
            && self.keep_within.is_none()
    }

    /// Whether the policy can keep no snapshot at all, whatever the repository holds: every
    /// count given is 0 and there is no `keep-within` (which always keeps the newest).
    pub fn keeps_nothing(&self) -> bool {
        self.keep_within.is_none()
            && [
                self.keep_last,
                self.keep_hourly,
                self.keep_daily,
                self.keep_weekly,
                self.keep_monthly,
            ]
            .into_iter()
            .all(|n| n.is_none_or(|n| n == 0))
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Decision {
    pub id: String,
    pub time: DateTime<Utc>,
    pub keep: bool,
    pub reasons: Vec<String>,
}

type BucketFn = fn(&DateTime<Utc>) -> (i32, u32, u32, u32);

fn hour(t: &DateTime<Utc>) -> (i32, u32, u32, u32) {
    (t.year(), t.month(), t.day(), t.hour())
}
fn day(t: &DateTime<Utc>) -> (i32, u32, u32, u32) {
    (t.year(), t.month(), t.day(), 0)
}
fn week(t: &DateTime<Utc>) -> (i32, u32, u32, u32) {
    let w = t.iso_week();
    (w.year(), w.week(), 0, 0)
}
fn month(t: &DateTime<Utc>) -> (i32, u32, u32, u32) {
    (t.year(), t.month(), 0, 0)
}

/// Decides, for snapshots given as (id, recorded time), which to keep and why.
pub fn apply_policy(snaps: &[(String, DateTime<Utc>)], p: &RetentionPolicy) -> Vec<Decision> {
    let mut sorted: Vec<&(String, DateTime<Utc>)> = snaps.iter().collect();
    // Newest first; ties broken by id so the outcome never depends on listing order.
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let mut out: Vec<Decision> = sorted
        .iter()
        .map(|(id, t)| Decision {
            id: id.clone(),
            time: *t,
            keep: false,
            reasons: Vec::new(),
        })
        .collect();
    if let Some(n) = p.keep_last {
        for (i, d) in out.iter_mut().take(n).enumerate() {
            d.reasons.push(format!("last #{}", i + 1));
        }
    }
    let rules: [(&str, Option<usize>, BucketFn); 4] = [
        ("hourly", p.keep_hourly, hour),
        ("daily", p.keep_daily, day),
        ("weekly", p.keep_weekly, week),
        ("monthly", p.keep_monthly, month),
    ];
    for (name, n, bucket) in rules {
        let Some(n) = n else { continue };
        let mut last = None;
        let mut count = 0;
        for d in out.iter_mut() {
            if count >= n {
                break;
            }
            let b = bucket(&d.time);
            if last != Some(b) {
                last = Some(b);
                count += 1;
                d.reasons.push(format!("{name} #{count}"));
            }
        }
    }
    if let (Some(w), Some(newest)) = (p.keep_within, out.first().map(|d| d.time)) {
        let w = chrono::Duration::from_std(w).unwrap_or(chrono::Duration::MAX);
        let cutoff = newest
            .checked_sub_signed(w)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        for d in out.iter_mut().filter(|d| d.time >= cutoff) {
            d.reasons.push("within".to_string());
        }
    }
    for d in &mut out {
        d.keep = !d.reasons.is_empty();
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct PrunePlan {
    pub decisions: Vec<Decision>,
    /// Objects that would be unreferenced once the removed snapshots are gone.
    pub objects_to_remove: usize,
    pub bytes_to_remove: u64,
    /// Unreferenced objects spared because they are younger than the grace period.
    pub objects_in_grace: usize,
    pub grace_secs: u64,
    /// Archive objects (continuous WAL archiving) no kept snapshot needs (`archive::retention`).
    pub archive_objects_to_remove: usize,
    pub archive_bytes_to_remove: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    pub snapshots_removed: usize,
    /// Objects the collection newly marked as unreferenced.
    pub objects_marked: usize,
    pub objects_removed: usize,
    pub bytes_removed: u64,
    pub objects_in_grace: usize,
    pub archive_objects_removed: usize,
    pub archive_bytes_removed: u64,
    /// Why no object was deleted this time (a backup was running).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred: Option<String>,
}

/// Which snapshots a policy applies to.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only the snapshots this schedule made (`None`: every snapshot).
    pub schedule: Option<String>,
}

impl Scope {
    fn covers(&self, m: &Manifest) -> bool {
        self.schedule
            .as_ref()
            .is_none_or(|s| m.schedule.as_ref() == Some(s))
    }
}

/// Plans a prune of every snapshot: which snapshots go, and what garbage that leaves.
pub async fn plan_prune(
    repo: &Repository,
    policy: &RetentionPolicy,
    grace: Duration,
) -> Result<PrunePlan> {
    plan_prune_scoped(repo, policy, grace, &Scope::default()).await
}

/// Plans a prune of the snapshots in `scope`.
pub async fn plan_prune_scoped(
    repo: &Repository,
    policy: &RetentionPolicy,
    grace: Duration,
    scope: &Scope,
) -> Result<PrunePlan> {
    if policy.is_empty() {
        return Err(Error::InvalidArgument(
            "no retention rule given (e.g. --keep-last 7); refusing to remove every snapshot"
                .into(),
        ));
    }
    if policy.keeps_nothing() && !policy.allow_empty {
        return Err(Error::InvalidArgument(
            "this policy keeps no snapshot (every --keep-* count is 0); refusing to remove \
             every snapshot (pass --allow-empty to do that on purpose)"
                .into(),
        ));
    }
    let (ms, _) = repo.manifests().await?;
    let pins = crate::gc::pinned(repo).await?;
    let snaps: Vec<(String, DateTime<Utc>)> = ms
        .iter()
        .filter(|m| scope.covers(m))
        .map(|m| (m.id.clone(), m.recorded_time()))
        .collect();
    let mut decisions = apply_policy(&snaps, policy);
    for d in decisions.iter_mut().filter(|d| pins.contains(&d.id)) {
        d.reasons.push("pinned".to_string());
        d.keep = true;
    }
    if !decisions.is_empty() && decisions.iter().all(|d| !d.keep) && !policy.allow_empty {
        return Err(Error::InvalidArgument(format!(
            "this policy would remove all {} snapshots; refusing (pass --allow-empty to do that on purpose)",
            decisions.len()
        )));
    }
    let listing = crate::archive::window::ArchiveListing::load(repo).await?;
    crate::archive::retention::extend_keeps(&ms, &listing, policy.keep_within, &mut decisions);
    let removed: HashSet<String> = decisions
        .iter()
        .filter(|d| !d.keep)
        .map(|d| d.id.clone())
        .collect();
    let refs: HashSet<String> = ms
        .iter()
        .filter(|m| !removed.contains(&m.id))
        .flat_map(|m| m.files.iter().map(|f| f.object.clone()))
        .collect();
    let (remove, grace_n, bytes) = garbage(repo, &refs, grace).await?;
    // Archive retention sees every snapshot that survives (a scoped prune keeps the others).
    let kept: HashSet<String> = ms
        .iter()
        .filter(|m| !removed.contains(&m.id))
        .map(|m| m.id.clone())
        .collect();
    let (archive_objects_to_remove, archive_bytes_to_remove) =
        crate::archive::retention::plan(repo, grace, &kept).await?;
    Ok(PrunePlan {
        archive_objects_to_remove,
        archive_bytes_to_remove,
        decisions,
        objects_to_remove: remove.len(),
        bytes_to_remove: bytes,
        objects_in_grace: grace_n,
        grace_secs: grace.as_secs(),
    })
}

async fn garbage(
    repo: &Repository,
    refs: &HashSet<String>,
    grace: Duration,
) -> Result<(Vec<String>, usize, u64)> {
    let cutoff = Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let mut remove = Vec::new();
    let mut in_grace = 0;
    let mut bytes = 0;
    for (id, o) in repo.list_objects().await? {
        if refs.contains(&id) {
            continue;
        }
        if o.last_modified > cutoff {
            in_grace += 1;
        } else {
            bytes += o.size;
            remove.push(id);
        }
    }
    Ok((remove, in_grace, bytes))
}

/// Executes a plan: manifests first (a snapshot pinned since the plan was made stays), then
/// the two-phase garbage collection ([`crate::gc::collect`]).
pub async fn prune(repo: &Repository, plan: &PrunePlan) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    let pins = crate::gc::pinned(repo).await?;
    for d in plan.decisions.iter().filter(|d| !d.keep) {
        if pins.contains(&d.id) {
            continue;
        }
        repo.delete_manifest(&d.id).await?;
        report.snapshots_removed += 1;
    }
    let gc = crate::gc::collect(repo, Duration::from_secs(plan.grace_secs)).await?;
    report.objects_marked = gc.objects_marked;
    report.objects_removed = gc.objects_removed;
    report.bytes_removed = gc.bytes_removed;
    report.objects_in_grace = gc.objects_in_grace;
    report.deferred = gc.deferred;
    (report.archive_objects_removed, report.archive_bytes_removed) =
        crate::archive::retention::apply(repo, Duration::from_secs(plan.grace_secs)).await?;
    Ok(report)
}

/// Removes one snapshot by hand (`strata forget`, the web UI's delete): its manifest goes
/// now, the objects only it referenced at the next prune's garbage collection (two-phase,
/// never under a running backup). `id` must be a whole snapshot id (no prefix: a delete is
/// never a guess); a damaged manifest can be removed too. A pinned snapshot is refused.
pub async fn forget(repo: &Repository, id: &str) -> Result<()> {
    if !repo.snapshot_ids().await?.iter().any(|s| s == id) {
        return Err(Error::SnapshotNotFound(id.to_string()));
    }
    if crate::gc::pinned(repo).await?.contains(id) {
        return Err(Error::Refused(format!(
            "snapshot {id} is pinned; unpin it first (strata unpin {id})"
        )));
    }
    repo.delete_manifest(id).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn snaps(times: &[&str]) -> Vec<(String, DateTime<Utc>)> {
        times
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("s{i:02}"), t(s)))
            .collect()
    }

    fn kept(d: &[Decision]) -> Vec<String> {
        let mut v: Vec<String> = d.iter().filter(|d| d.keep).map(|d| d.id.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn keep_last() {
        let s = snaps(&[
            "2026-01-01T00:00:00Z",
            "2026-01-02T00:00:00Z",
            "2026-01-03T00:00:00Z",
        ]);
        let p = RetentionPolicy {
            keep_last: Some(2),
            ..Default::default()
        };
        assert_eq!(kept(&apply_policy(&s, &p)), ["s01", "s02"]);
        // Order of input does not matter.
        let mut r = s.clone();
        r.reverse();
        assert_eq!(kept(&apply_policy(&r, &p)), ["s01", "s02"]);
    }

    #[test]
    fn daily_keeps_newest_of_each_day_across_midnight() {
        let s = snaps(&[
            "2026-03-01T23:59:59Z",
            "2026-03-02T00:00:00Z",
            "2026-03-02T12:00:00Z",
            "2026-03-03T00:00:01Z",
        ]);
        let p = RetentionPolicy {
            keep_daily: Some(2),
            ..Default::default()
        };
        assert_eq!(kept(&apply_policy(&s, &p)), ["s02", "s03"]);
        let p = RetentionPolicy {
            keep_daily: Some(5),
            ..Default::default()
        };
        assert_eq!(kept(&apply_policy(&s, &p)), ["s00", "s02", "s03"]);
    }

    #[test]
    fn weekly_uses_iso_weeks_across_new_year() {
        // 2026-12-31 (Thursday) and 2027-01-03 (Sunday) are both in ISO week 2026-W53.
        let s = snaps(&[
            "2026-12-27T10:00:00Z", // Sunday of W52
            "2026-12-31T10:00:00Z", // W53
            "2027-01-03T10:00:00Z", // W53
            "2027-01-04T10:00:00Z", // Monday, 2027-W01
        ]);
        let p = RetentionPolicy {
            keep_weekly: Some(3),
            ..Default::default()
        };
        assert_eq!(kept(&apply_policy(&s, &p)), ["s00", "s02", "s03"]);
    }

    #[test]
    fn monthly_hourly_and_reasons() {
        let s = snaps(&[
            "2026-01-31T23:00:00Z",
            "2026-02-28T23:30:00Z",
            "2026-02-28T23:45:00Z",
            "2026-03-01T00:15:00Z",
        ]);
        let p = RetentionPolicy {
            keep_monthly: Some(2),
            keep_hourly: Some(1),
            ..Default::default()
        };
        let d = apply_policy(&s, &p);
        assert_eq!(kept(&d), ["s02", "s03"]);
        let s03 = d.iter().find(|d| d.id == "s03").unwrap();
        assert_eq!(s03.reasons, ["hourly #1", "monthly #1"]);
    }

    #[test]
    fn within_is_relative_to_newest_and_inclusive() {
        let s = snaps(&[
            "2026-05-01T00:00:00Z",
            "2026-05-02T00:00:00Z",
            "2026-05-03T00:00:00Z",
        ]);
        let p = RetentionPolicy {
            keep_within: Some(Duration::from_secs(86_400)),
            ..Default::default()
        };
        assert_eq!(kept(&apply_policy(&s, &p)), ["s01", "s02"]);
    }

    #[test]
    fn zero_counts_keep_nothing_but_empty_policy_is_refused_elsewhere() {
        let s = snaps(&["2026-05-01T00:00:00Z"]);
        let p = RetentionPolicy {
            keep_last: Some(0),
            ..Default::default()
        };
        assert!(kept(&apply_policy(&s, &p)).is_empty());
        assert!(RetentionPolicy::default().is_empty());
        assert!(!p.is_empty());
    }

    #[test]
    fn a_policy_of_zero_counts_keeps_nothing() {
        let zero_daily = RetentionPolicy {
            keep_daily: Some(0),
            keep_last: Some(0),
            ..Default::default()
        };
        assert!(zero_daily.keeps_nothing());
        let some = RetentionPolicy {
            keep_daily: Some(0),
            keep_weekly: Some(1),
            ..Default::default()
        };
        assert!(!some.keeps_nothing());
        // keep-within always keeps the newest snapshot, even at zero.
        let within = RetentionPolicy {
            keep_last: Some(0),
            keep_within: Some(Duration::ZERO),
            ..Default::default()
        };
        assert!(!within.keeps_nothing());
        let s = snaps(&["2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z"]);
        assert_eq!(kept(&apply_policy(&s, &within)), ["s01"]);
    }
}
