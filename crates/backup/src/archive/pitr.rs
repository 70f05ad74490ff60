//! `strata restore --at TIME`: the plan (which window, which snapshot, which archive objects,
//! the exact last batch) and the staging step the restore calls between downloading the
//! snapshot and preparing the staged directory: archived records after the snapshot's cut,
//! up to the last one committed at or before TIME, become WAL segments the prepare replays.
//!
//! Commit times never decrease along the LSNs (`docs/format/wal.md`), so "every batch
//! committed at or before TIME" is a prefix of a window's records: whole objects whose last
//! record is at or before TIME, then a prefix of the one object that straddles TIME.

use serde::Serialize;
use strata_engine::backup_api::archive::{WalRecord, append_wal_segment};

use super::object::{self, ObjectName};
use super::window::{Window, Windows, rfc3339};
use crate::error::{Error, Result};
use crate::repo::Repository;

/// Flush staged records to a new WAL segment once this many payload bytes are buffered.
const SEGMENT_BYTES: usize = 64 << 20;

/// What a point-in-time restore replays on top of its snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct PitrPlan {
    /// The requested time (ns) and its RFC 3339 form.
    pub at_ns: i64,
    pub at: String,
    pub node: String,
    pub chain: String,
    /// The snapshot restored first (its cut is at or before `at`).
    pub snapshot: String,
    pub snapshot_lsn: u64,
    /// Archive objects replayed, in order, and their stored bytes.
    pub objects: Vec<String>,
    pub archive_bytes: u64,
    /// The last batch included: its LSN and commit time (`None`: the snapshot alone).
    pub last_lsn: Option<u64>,
    pub last_commit: Option<String>,
    /// Batches replayed from the archive.
    pub batches: u64,
    #[serde(skip)]
    names: Vec<ObjectName>,
}

fn window_list(ws: &[&Window]) -> String {
    ws.iter()
        .map(|w| {
            format!(
                "{} .. {} (node {})",
                rfc3339(w.start_ns),
                rfc3339(w.end_ns),
                w.node
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Chooses the window, snapshot and archive objects for `at_ns` (`node`: only that node's
/// archive). Refuses a time in the future, outside every window, or in a gap, naming the
/// windows or the gap. Reads the one archive object that straddles `at_ns` (checking it) to
/// name the exact last batch.
pub async fn plan(
    repo: &Repository,
    at_ns: i64,
    now_ns: i64,
    node: Option<&str>,
) -> Result<PitrPlan> {
    let at = rfc3339(at_ns);
    if at_ns > now_ns {
        return Err(Error::InvalidArgument(format!(
            "--at {at} is in the future (now is {})",
            rfc3339(now_ns)
        )));
    }
    let (windows, _) = Windows::load(repo).await?;
    let mine: Vec<&Window> = windows
        .windows
        .iter()
        .filter(|w| node.is_none_or(|n| w.node == n))
        .collect();
    if mine.is_empty() {
        return Err(Error::Refused(format!(
            "no point-in-time window in {}{}: no archived WAL continues a snapshot (is archiving configured on the server?)",
            repo.url(),
            node.map(|n| format!(" for node {n}")).unwrap_or_default()
        )));
    }
    let covering: Vec<&Window> = mine
        .iter()
        .copied()
        .filter(|w| w.start_ns <= at_ns && at_ns <= w.end_ns)
        .collect();
    let w = match covering.as_slice() {
        [w] => *w,
        [] => {
            if let Some(g) = windows
                .gaps
                .iter()
                .find(|g| node.is_none_or(|n| g.node == n) && g.from_ns < at_ns && at_ns < g.to_ns)
            {
                return Err(Error::Refused(format!(
                    "--at {at} falls in a gap of node {}'s archive: nothing is recoverable between {} (LSN {}) and {} (LSN {}); choose a time in a window: {}",
                    g.node,
                    rfc3339(g.from_ns),
                    g.after_lsn,
                    rfc3339(g.to_ns),
                    g.resume_lsn,
                    window_list(&mine)
                )));
            }
            return Err(Error::Refused(format!(
                "--at {at} is outside the point-in-time window: {}",
                window_list(&mine)
            )));
        }
        many => {
            let nodes: std::collections::BTreeSet<&str> =
                many.iter().map(|w| w.node.as_str()).collect();
            if nodes.len() > 1 {
                return Err(Error::Refused(format!(
                    "--at {at} is in the windows of several nodes ({}); restore one node's data with --snapshot of that node or restrict with the node's id",
                    nodes.into_iter().collect::<Vec<_>>().join(", ")
                )));
            }
            // One node, several chains covering the instant: the newest chain started last.
            many.iter()
                .copied()
                .max_by_key(|w| w.start_ns)
                .ok_or_else(|| Error::Refused(format!("--at {at}: no window")))?
        }
    };
    let (snapshot, _, snapshot_lsn) = w
        .anchors
        .iter()
        .filter(|a| a.1 <= at_ns)
        .max_by_key(|a| (a.1, a.2))
        .cloned()
        .ok_or_else(|| Error::Refused(format!("--at {at}: no snapshot at or before it")))?;
    let mut p = PitrPlan {
        at_ns,
        at,
        node: w.node.clone(),
        chain: w.chain.clone(),
        snapshot,
        snapshot_lsn,
        objects: Vec::new(),
        archive_bytes: 0,
        last_lsn: None,
        last_commit: None,
        batches: 0,
        names: Vec::new(),
    };
    for (name, size) in &w.objects {
        if name.last_lsn <= snapshot_lsn {
            continue;
        }
        if name.first_time > at_ns {
            break;
        }
        p.objects.push(name.path().to_string());
        p.archive_bytes += size;
        p.names.push(name.clone());
        if name.last_time <= at_ns {
            let first = name.first_lsn.max(snapshot_lsn + 1);
            p.batches += name.last_lsn - first + 1;
            p.last_lsn = Some(name.last_lsn);
            p.last_commit = Some(rfc3339(name.last_time));
        } else {
            // The object straddling TIME: read it for the exact last batch.
            let recs = object::get(repo, name).await?;
            for r in included(&recs, snapshot_lsn, at_ns) {
                p.batches += 1;
                p.last_lsn = Some(r.lsn);
                p.last_commit = Some(rfc3339(r.commit_time_ns));
            }
            break;
        }
    }
    Ok(p)
}

/// The records of one object that a restore to `at_ns` on a snapshot cut at `cut` replays.
fn included(recs: &[WalRecord], cut: u64, at_ns: i64) -> impl Iterator<Item = &WalRecord> {
    recs.iter()
        .filter(move |r| r.lsn > cut)
        .take_while(move |r| r.commit_time_ns <= at_ns)
}

/// Downloads the plan's archive objects (each checked) and calls `sink` with their included
/// records, in LSN order, each once, checking they continue the snapshot's cut without a gap
/// and end where the plan said.
async fn replay_records(repo: &Repository, p: &PitrPlan, mut sink: impl AsyncSink) -> Result<()> {
    let mut next = p.snapshot_lsn + 1;
    for name in &p.names {
        let recs = object::get(repo, name).await?;
        let mut batch = Vec::new();
        for r in included(&recs, p.snapshot_lsn, p.at_ns) {
            if r.lsn < next {
                continue; // overlap with the previous object
            }
            if r.lsn != next {
                return Err(Error::corrupt(
                    name.path().to_string(),
                    format!("the archive skips from LSN {} to {}", next - 1, r.lsn),
                ));
            }
            next += 1;
            batch.push(r.clone());
        }
        sink.records(batch).await?;
    }
    if Some(next - 1) != p.last_lsn.or(Some(p.snapshot_lsn)) {
        return Err(Error::Refused(format!(
            "the archive changed since the plan (it now ends at LSN {} for {}); run the restore again",
            next - 1,
            p.at
        )));
    }
    sink.finish().await
}

/// Where [`replay_records`] puts the records.
trait AsyncSink {
    async fn records(&mut self, recs: Vec<WalRecord>) -> Result<()>;
    async fn finish(&mut self) -> Result<()>;
}

/// Adds records to a staged data directory's WAL, a segment per [`SEGMENT_BYTES`].
struct Staging<'a> {
    dir: &'a std::path::Path,
    buf: Vec<WalRecord>,
    bytes: usize,
}

impl AsyncSink for Staging<'_> {
    async fn records(&mut self, recs: Vec<WalRecord>) -> Result<()> {
        self.bytes += recs.iter().map(|r| r.payload.len()).sum::<usize>();
        self.buf.extend(recs);
        if self.bytes >= SEGMENT_BYTES {
            flush(self.dir, &mut self.buf).await?;
            self.bytes = 0;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        flush(self.dir, &mut self.buf).await
    }
}

/// Collects records in memory (a point-in-time query replays them without a data directory).
#[derive(Default)]
struct Collect(Vec<WalRecord>);

impl AsyncSink for &mut Collect {
    async fn records(&mut self, recs: Vec<WalRecord>) -> Result<()> {
        self.0.extend(recs);
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Downloads the plan's archive objects (each checked) and adds their included records to
/// the staged data directory's WAL, after the snapshot's own.
pub async fn stage(repo: &Repository, p: &PitrPlan, staged: &std::path::Path) -> Result<()> {
    let sink = Staging {
        dir: staged,
        buf: Vec::new(),
        bytes: 0,
    };
    replay_records(repo, p, sink).await
}

/// The records a point-in-time restore of `p` would replay on top of its snapshot, in memory
/// (`strata query --repo --at`).
pub async fn records(repo: &Repository, p: &PitrPlan) -> Result<Vec<WalRecord>> {
    let mut c = Collect::default();
    replay_records(repo, p, &mut c).await?;
    Ok(c.0)
}

async fn flush(staged: &std::path::Path, buf: &mut Vec<WalRecord>) -> Result<()> {
    let recs = std::mem::take(buf);
    let dir = staged.to_path_buf();
    tokio::task::spawn_blocking(move || append_wal_segment(&dir, &recs))
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
    Ok(())
}

/// The whole restore plan for `--at`: the point-in-time part, then the ordinary plan of its
/// snapshot with the archived WAL attached (executed by `restore::restore`).
pub async fn plan_restore_at(
    repo: &Repository,
    at_ns: i64,
    now_ns: i64,
    node: Option<&str>,
    target: &std::path::Path,
    opts: &crate::restore::RestoreOptions,
) -> Result<crate::restore::RestorePlan> {
    let p = plan(repo, at_ns, now_ns, node).await?;
    let mut rp = crate::restore::plan_restore(repo, &p.snapshot, target, opts).await?;
    rp.point_in_time = Some(p);
    Ok(rp)
}
