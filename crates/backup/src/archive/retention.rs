//! Retention of archive objects, called by `prune`:
//!
//! - an archive object is needed when it holds a record after the cut of a kept snapshot that
//!   anchors its chain (that snapshot's window replays it); every other object of the chain
//!   older than the grace period is removed — archive older than the oldest kept snapshot goes;
//! - `--keep-within D` also keeps, per node, the newest snapshot at or before `newest - D`
//!   that anchors a window, so the point-in-time window reaches back D;
//! - objects younger than the grace period are never removed, so an archiver writing while
//!   prune runs (a new chain whose base manifest prune has not listed yet) loses nothing.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use object_store::ObjectStoreExt;

use super::object::ObjectName;
use super::window::{ArchiveListing, Windows};
use crate::error::Result;
use crate::manifest::Manifest;
use crate::prune::Decision;
use crate::repo::Repository;

/// Keeps (with reason `pitr-within`) the snapshot each node's window needs to reach back
/// `within` from the newest snapshot.
pub fn extend_keeps(
    manifests: &[Manifest],
    listing: &ArchiveListing,
    within: Option<Duration>,
    decisions: &mut [Decision],
) {
    let Some(within) = within else {
        return;
    };
    let Some(newest) = manifests.iter().map(|m| m.time).max() else {
        return;
    };
    let horizon = newest.saturating_sub(i64::try_from(within.as_nanos()).unwrap_or(i64::MAX));
    let windows = Windows::compute(listing, manifests);
    let mut keep: HashSet<String> = HashSet::new();
    for w in &windows.windows {
        if w.end_ns < horizon {
            continue;
        }
        if let Some(a) = w
            .anchors
            .iter()
            .filter(|a| a.1 <= horizon)
            .max_by_key(|a| a.1)
        {
            keep.insert(a.0.clone());
        }
    }
    for d in decisions.iter_mut() {
        if !d.keep && keep.contains(&d.id) {
            d.keep = true;
            d.reasons.push("pitr-within".into());
        }
    }
}

/// Archive objects no kept snapshot needs (see the module docs), ignoring the grace period.
pub fn unneeded(listing: &ArchiveListing, kept: &[Manifest]) -> Vec<(ObjectName, u64)> {
    let mut chains: BTreeMap<(&str, &str), Vec<&(ObjectName, u64)>> = BTreeMap::new();
    for o in &listing.objects {
        chains
            .entry((o.0.node.as_str(), o.0.chain.as_str()))
            .or_default()
            .push(o);
    }
    let mut out = Vec::new();
    for ((node, _), objects) in chains {
        let lo = objects.iter().map(|o| o.0.first_lsn).min().unwrap_or(0);
        let hi = objects.iter().map(|o| o.0.last_lsn).max().unwrap_or(0);
        let from = kept
            .iter()
            .filter(|m| m.node_id == node && lo <= m.lsn + 1 && m.lsn <= hi)
            .map(|m| m.lsn + 1)
            .min();
        for o in objects {
            if from.is_none_or(|f| o.0.last_lsn < f) {
                out.push(o.clone());
            }
        }
    }
    out
}

async fn removable(
    repo: &Repository,
    grace: Duration,
    only: Option<&HashSet<String>>,
) -> Result<(Vec<(ObjectName, u64)>, usize)> {
    let listing = ArchiveListing::load(repo).await?;
    let (mut kept, bad) = repo.manifests().await?;
    if let Some(ids) = only {
        kept.retain(|m| ids.contains(&m.id));
    }
    if !bad.is_empty() {
        // A manifest we cannot read may anchor any chain: remove nothing.
        return Ok((Vec::new(), 0));
    }
    let cutoff = Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let young: HashSet<String> = {
        use futures::TryStreamExt;
        let mut s = repo.store().list(Some(&object_store::path::Path::from(
            super::object::ARCHIVE_DIR,
        )));
        let mut young = HashSet::new();
        while let Some(m) = s.try_next().await? {
            if m.last_modified > cutoff {
                young.insert(m.location.to_string());
            }
        }
        young
    };
    let mut in_grace = 0;
    let mut out = Vec::new();
    for o in unneeded(&listing, &kept) {
        if young.contains(o.0.path().as_ref()) {
            in_grace += 1;
        } else {
            out.push(o);
        }
    }
    Ok((out, in_grace))
}

/// What [`apply`] would remove once only the snapshots `kept` remain: (objects, bytes).
pub async fn plan(
    repo: &Repository,
    grace: Duration,
    kept: &HashSet<String>,
) -> Result<(usize, u64)> {
    let (r, _) = removable(repo, grace, Some(kept)).await?;
    Ok((r.len(), r.iter().map(|o| o.1).sum()))
}

/// Removes archive objects no surviving snapshot needs (after prune removed its manifests).
/// Returns (objects, bytes) removed.
pub async fn apply(repo: &Repository, grace: Duration) -> Result<(usize, u64)> {
    let (r, _) = removable(repo, grace, None).await?;
    let mut bytes = 0;
    for (name, size) in &r {
        match repo.store().delete(&name.path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => bytes += size,
            Err(e) => return Err(e.into()),
        }
    }
    Ok((r.len(), bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn obj(chain: &str, first: u64, last: u64) -> (ObjectName, u64) {
        (
            ObjectName {
                node: "n".into(),
                chain: chain.into(),
                first_lsn: first,
                last_lsn: last,
                first_time: first as i64,
                last_time: last as i64,
            },
            10,
        )
    }

    fn manifest(id: &str, node: &str, lsn: u64, time: i64) -> Manifest {
        let mut m: Manifest = serde_json::from_value(serde_json::json!({
            "version": 1, "id": id, "time": time, "finished": time, "node_id": node,
            "engine_format": 1, "kind": "full", "parent": null, "lsn": lsn,
            "catalog": {"groups": []}, "parts": [], "wal": [], "files": [], "labels": {},
            "stats": {"files": 0, "bytes": 0, "new_objects": 0, "new_bytes": 0,
                      "uploaded_bytes": 0, "reused_objects": 0}
        }))
        .unwrap();
        m.node_id = node.into();
        m
    }

    #[test]
    fn archive_before_the_oldest_kept_snapshot_goes_and_the_rest_stays() {
        let a = "aaaaaaaaaaaaaaaa";
        let b = "bbbbbbbbbbbbbbbb";
        let listing = ArchiveListing {
            objects: vec![
                obj(a, 11, 20),
                obj(a, 21, 30),
                obj(a, 31, 40),
                obj(b, 51, 60),
            ],
            strays: vec![],
        };
        // Kept: a snapshot cut at 25 (anchors chain a in the middle of 21..30).
        let kept = vec![manifest("s1", "n", 25, 100)];
        let gone: Vec<(u64, &str)> = unneeded(&listing, &kept)
            .iter()
            .map(|o| (o.0.first_lsn, if o.0.chain == a { "a" } else { "b" }))
            .collect();
        // 11..20 is before the cut; chain b has no kept snapshot at all.
        assert_eq!(gone, vec![(11, "a"), (51, "b")]);
        // A snapshot of another node anchors nothing here.
        let other = vec![manifest("s2", "m", 10, 100)];
        assert_eq!(unneeded(&listing, &other).len(), 4);
    }

    #[test]
    fn keep_within_keeps_the_snapshot_the_window_starts_from() {
        let a = "aaaaaaaaaaaaaaaa";
        let listing = ArchiveListing {
            objects: vec![obj(a, 11, 100)],
            strays: vec![],
        };
        let hour = 3_600_000_000_000i64;
        let ms = vec![
            manifest("old", "n", 10, 0),
            manifest("mid", "n", 40, 5 * hour),
            manifest("new", "n", 90, 10 * hour),
        ];
        // Pretend the archive's commit times are in hours (the window ends at 100 h).
        let mut listing = listing;
        listing.objects[0].0.last_time = 100 * hour;
        let mut d: Vec<Decision> = ms
            .iter()
            .map(|m| Decision {
                id: m.id.clone(),
                time: m.recorded_time(),
                keep: m.id == "new",
                reasons: vec![],
            })
            .collect();
        extend_keeps(&ms, &listing, Some(Duration::from_secs(6 * 3600)), &mut d);
        let kept: Vec<&str> = d.iter().filter(|d| d.keep).map(|d| d.id.as_str()).collect();
        // 10 h - 6 h = 4 h: the newest snapshot at or before it is "old" (0 h).
        assert_eq!(kept, vec!["old", "new"]);
    }
}
