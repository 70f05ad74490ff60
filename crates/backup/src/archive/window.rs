//! The point-in-time windows a repository can restore to, from the archive objects' names and
//! the snapshot manifests (no archive object is read).
//!
//! Per node and chain, the archived LSNs form runs of consecutive records. A snapshot of the
//! node is an *anchor* of a run when the record after its cut is the run's first or lies in
//! it (`first <= lsn + 1 <= last + 1`). A run's window goes from its oldest anchor's time to
//! the commit time of the run's last record: every instant in it is the snapshot's data plus a
//! prefix of the run. Between runs (and chains) of a node lie gaps: times no restore reaches.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use object_store::path::Path;
use serde::Serialize;

use super::object::{ARCHIVE_DIR, ObjectName};
use crate::error::Result;
use crate::manifest::Manifest;
use crate::repo::Repository;

/// Every archive object of a repository, by name, with its stored size.
#[derive(Debug, Clone, Default)]
pub struct ArchiveListing {
    pub objects: Vec<(ObjectName, u64)>,
    /// Listed keys under `archive/` that are not archive object names (reported, never used).
    pub strays: Vec<String>,
}

impl ArchiveListing {
    pub async fn load(repo: &Repository) -> Result<ArchiveListing> {
        let mut out = ArchiveListing::default();
        let mut s = repo.store().list(Some(&Path::from(ARCHIVE_DIR)));
        while let Some(m) = s.try_next().await? {
            match ObjectName::parse(m.location.as_ref()) {
                Some(n) => out.objects.push((n, m.size)),
                None => out.strays.push(m.location.to_string()),
            }
        }
        out.objects.sort();
        Ok(out)
    }
}

/// A run of consecutive archived records of one chain, and what can be restored in it.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub node: String,
    pub chain: String,
    /// The oldest anchor's time: the window's start (ns).
    pub start_ns: i64,
    /// Commit time of the run's last record: the newest recoverable point (ns).
    pub end_ns: i64,
    pub first_lsn: u64,
    pub last_lsn: u64,
    /// Snapshots this window can start from, oldest first: (id, time, lsn).
    pub anchors: Vec<(String, i64, u64)>,
    /// Archive objects of the run, in LSN order (overlaps removed).
    #[serde(skip)]
    pub objects: Vec<(ObjectName, u64)>,
}

/// A stretch of time no restore reaches, between two windows of a node.
#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    pub node: String,
    /// Last recoverable point before the gap and the first after it (ns).
    pub from_ns: i64,
    pub to_ns: i64,
    /// The archived LSN before the gap (0 if unknown) and the first after it.
    pub after_lsn: u64,
    pub resume_lsn: u64,
}

/// Windows and gaps per node.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Windows {
    pub windows: Vec<Window>,
    pub gaps: Vec<Gap>,
}

/// Runs of one chain: objects in LSN order; a record covered twice (an object re-shipped
/// after a crash) is taken from the object that reaches further.
fn runs(objects: &[(ObjectName, u64)]) -> Vec<Vec<(ObjectName, u64)>> {
    let mut sorted = objects.to_vec();
    sorted.sort_by_key(|(n, _)| (n.first_lsn, std::cmp::Reverse(n.last_lsn)));
    let mut out: Vec<Vec<(ObjectName, u64)>> = Vec::new();
    let mut next = 0u64; // first LSN not yet covered by the current run
    for o in sorted {
        match out.last_mut() {
            Some(run) if o.0.first_lsn <= next => {
                if o.0.last_lsn >= next {
                    next = o.0.last_lsn + 1;
                    run.push(o);
                }
            }
            _ => {
                next = o.0.last_lsn + 1;
                out.push(vec![o]);
            }
        }
    }
    out
}

impl Windows {
    pub fn compute(listing: &ArchiveListing, manifests: &[Manifest]) -> Windows {
        let mut chains: BTreeMap<(String, String), Vec<(ObjectName, u64)>> = BTreeMap::new();
        for o in &listing.objects {
            chains
                .entry((o.0.node.clone(), o.0.chain.clone()))
                .or_default()
                .push(o.clone());
        }
        let mut out = Windows::default();
        for ((node, chain), objects) in chains {
            for run in runs(&objects) {
                let (Some(first), Some(last)) = (run.first(), run.last()) else {
                    continue;
                };
                let (first_lsn, last_lsn, end_ns) =
                    (first.0.first_lsn, last.0.last_lsn, last.0.last_time);
                let mut anchors: Vec<(String, i64, u64)> = manifests
                    .iter()
                    .filter(|m| m.node_id == node)
                    .filter(|m| first_lsn <= m.lsn + 1 && m.lsn <= last_lsn)
                    .filter(|m| m.time <= end_ns)
                    .map(|m| (m.id.clone(), m.time, m.lsn))
                    .collect();
                anchors.sort_by_key(|a| (a.1, a.2));
                let Some(start_ns) = anchors.first().map(|a| a.1) else {
                    continue; // nothing to start from: archive no kept snapshot needs
                };
                out.windows.push(Window {
                    node: node.clone(),
                    chain: chain.clone(),
                    start_ns,
                    end_ns,
                    first_lsn,
                    last_lsn,
                    anchors,
                    objects: run,
                });
            }
        }
        out.windows.sort_by_key(|w| (w.node.clone(), w.start_ns));
        for pair in out.windows.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.node == b.node {
                out.gaps.push(Gap {
                    node: a.node.clone(),
                    from_ns: a.end_ns,
                    to_ns: b.start_ns,
                    after_lsn: a.last_lsn,
                    resume_lsn: b.first_lsn,
                });
            }
        }
        out
    }

    pub async fn load(repo: &Repository) -> Result<(Windows, ArchiveListing)> {
        let listing = ArchiveListing::load(repo).await?;
        let (manifests, _) = repo.manifests().await?;
        Ok((Windows::compute(&listing, &manifests), listing))
    }

    pub fn of_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Window> + 'a {
        self.windows.iter().filter(move |w| w.node == node)
    }
}

/// RFC 3339 (UTC, to the nanosecond) of a time in ns.
pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn obj(first: u64, last: u64, t0: i64, t1: i64) -> (ObjectName, u64) {
        (
            ObjectName {
                node: "n".into(),
                chain: "0123456789abcdef".into(),
                first_lsn: first,
                last_lsn: last,
                first_time: t0,
                last_time: t1,
            },
            100,
        )
    }

    #[test]
    fn runs_merge_overlaps_and_split_at_holes() {
        let r = runs(&[
            obj(1, 5, 1, 5),
            obj(4, 8, 4, 8), // re-shipped after a crash
            obj(6, 7, 6, 7), // covered already
            obj(9, 9, 9, 9),
            obj(12, 13, 12, 13),
        ]);
        let spans: Vec<(u64, u64)> = r
            .iter()
            .map(|run| (run[0].0.first_lsn, run.last().unwrap().0.last_lsn))
            .collect();
        assert_eq!(spans, vec![(1, 9), (12, 13)]);
    }
}
