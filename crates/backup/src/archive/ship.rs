//! The archiver: ships durable WAL records of a running engine to the repository, continuing
//! from the engine's archive cursor.
//!
//! One [`Shipper::step`]: read the durable records after the cursor (the WAL the engine keeps
//! for us), write them as one archive object (create-if-absent), then advance the cursor
//! durably so the engine may delete that WAL. A crash between the put and the cursor leaves
//! an object the next step ships again in part (overlaps are harmless: readers take each LSN
//! once). Records the engine deleted before they were shipped (the `max_pending` bound)
//! show as a jump in LSNs: the shipper counts a gap, logs it and starts a new chain from a
//! fresh snapshot (a backup), whose manifest id names the chain. Shipping runs beside
//! acknowledgements and never holds the engine's write path (it reads WAL files; the cursor
//! write is an fsync of a small file).
//!
//! Starting a chain is a whole backup (a lock, listings, uploads, the manifest): many
//! requests that must all succeed. A failed start is therefore *resumed*, not begun again:
//! the shipper keeps its snapshot pinned, and the next step backs up the same snapshot
//! (objects uploaded by the failed attempt are found and reused), first adopting the
//! snapshot's manifest if the failed attempt wrote it and only lost the reply. A start that
//! kept failing for [`BASE_RETRY_FOR`] takes a fresh snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use strata_engine::backup_api::archive::{ArchiveCursor, WalPosition, WalTail};
use strata_engine::backup_api::{self, Engine, Snapshot};

use super::object;
use crate::backup::{BackupOptions, backup};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::source::{EngineSource, SnapshotSource};

/// Largest object (payload bytes) one step ships; a backlog goes out in several steps.
pub const MAX_OBJECT_BYTES: usize = 16 << 20;

/// How long a failed chain start keeps retrying the same snapshot before taking a fresh one
/// (well inside the engine's snapshot pin lifetime of an hour).
pub const BASE_RETRY_FOR: Duration = Duration::from_secs(10 * 60);

/// What the archiver has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct ArchiveStats {
    pub bytes_shipped: AtomicU64,
    pub objects_shipped: AtomicU64,
    pub failures: AtomicU64,
    pub gaps: AtomicU64,
    /// Commit time (ns) of the oldest durable record not archived yet; 0 when caught up.
    pub oldest_unarchived_ns: AtomicI64,
    /// The current chain's window: its base snapshot's time and the last archived commit (ns).
    pub window_start_ns: AtomicI64,
    pub window_end_ns: AtomicI64,
    pub archived_lsn: AtomicU64,
}

impl ArchiveStats {
    /// Age of the oldest acknowledged write not yet archived, at `now_ns`.
    pub fn lag_seconds(&self, now_ns: i64) -> f64 {
        match self.oldest_unarchived_ns.load(Ordering::Relaxed) {
            0 => 0.0,
            t => (now_ns.saturating_sub(t)).max(0) as f64 / 1e9,
        }
    }
}

/// What a step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing new to ship.
    Idle,
    /// Shipped records `first..=last` in one object.
    Shipped { first: u64, last: u64 },
    /// Started a new chain from a fresh snapshot (first start, or after a gap).
    NewChain { chain: String, lsn: u64 },
}

pub struct Shipper {
    engine: Arc<Engine>,
    repo: Arc<Repository>,
    pub stats: Arc<ArchiveStats>,
    position: Option<WalPosition>,
    window_loaded: bool,
    /// The snapshot of a chain start that failed, still pinned: the next start resumes it.
    base: Option<Snapshot>,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))
}

impl Shipper {
    pub fn new(engine: Arc<Engine>, repo: Arc<Repository>, stats: Arc<ArchiveStats>) -> Shipper {
        Shipper {
            engine,
            repo,
            stats,
            position: None,
            window_loaded: false,
            base: None,
        }
    }

    fn cursor(&self) -> Result<ArchiveCursor> {
        self.engine.archive_cursor().ok_or_else(|| {
            Error::InvalidArgument(
                "the engine was opened without an archive hold (archive_max_pending)".into(),
            )
        })
    }

    /// One round (see the module docs). An error leaves the cursor where it was: the next
    /// step ships the same records again.
    pub async fn step(&mut self) -> Result<Step> {
        let r = self.try_step().await;
        if r.is_err() {
            self.stats.failures.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    async fn try_step(&mut self) -> Result<Step> {
        let cursor = self.cursor()?;
        if cursor.chain.is_empty() {
            return self.new_chain().await;
        }
        if !self.window_loaded {
            // After a restart: the chain's base snapshot gives the window's start.
            if let Ok(m) = self.repo.load_manifest(&cursor.chain).await {
                self.stats.window_start_ns.store(m.time, Ordering::Relaxed);
            }
            self.stats.archived_lsn.store(cursor.lsn, Ordering::Relaxed);
            self.window_loaded = true;
        }
        let engine = self.engine.clone();
        let (after, from) = (cursor.lsn, self.position);
        let tail: WalTail =
            blocking(move || engine.read_wal_after(after, from, MAX_OBJECT_BYTES)).await??;
        let Some(first) = tail.records.first() else {
            if tail.durable_lsn > cursor.lsn {
                return self.gap(&cursor, tail.durable_lsn).await;
            }
            self.stats.oldest_unarchived_ns.store(0, Ordering::Relaxed);
            return Ok(Step::Idle);
        };
        if first.lsn != cursor.lsn + 1 {
            return self.gap(&cursor, first.lsn).await;
        }
        self.stats
            .oldest_unarchived_ns
            .store(first.commit_time_ns.max(1), Ordering::Relaxed);
        let node = self.engine.node_id().to_string();
        let (name, size) = object::put(&self.repo, &node, &cursor.chain, &tail.records).await?;
        let next = ArchiveCursor {
            lsn: name.last_lsn,
            chain: cursor.chain.clone(),
        };
        let engine = self.engine.clone();
        blocking(move || engine.set_archive_cursor(next)).await??;
        self.position = tail.position;
        let s = &self.stats;
        s.bytes_shipped.fetch_add(size, Ordering::Relaxed);
        s.objects_shipped.fetch_add(1, Ordering::Relaxed);
        s.window_end_ns.store(name.last_time, Ordering::Relaxed);
        s.archived_lsn.store(name.last_lsn, Ordering::Relaxed);
        if name.last_lsn >= tail.durable_lsn {
            s.oldest_unarchived_ns.store(0, Ordering::Relaxed);
        }
        Ok(Step::Shipped {
            first: name.first_lsn,
            last: name.last_lsn,
        })
    }

    async fn gap(&mut self, cursor: &ArchiveCursor, resume: u64) -> Result<Step> {
        self.stats.gaps.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            chain = %cursor.chain,
            archived_through = cursor.lsn,
            next_available = resume,
            "the archive has a gap: WAL after LSN {} was deleted before it was shipped \
             (archive.max_pending exceeded); the point-in-time window breaks here; \
             starting a new chain from a fresh snapshot",
            cursor.lsn
        );
        self.new_chain().await
    }

    /// Backs up a snapshot and starts a chain after its cut. A failed attempt keeps its
    /// snapshot for the next one (see the module docs).
    async fn new_chain(&mut self) -> Result<Step> {
        let source = EngineSource::new(self.engine.clone());
        let (snap, resumed) = match self.base.take() {
            Some(s) if age_ns(&s) < BASE_RETRY_FOR.as_nanos() as i64 => (s, true),
            stale => {
                if let Some(s) = stale {
                    release(&source, &s).await;
                }
                (source.take().await?, false)
            }
        };
        let m = match self.back_up_base(&snap, resumed).await {
            Ok(m) => m,
            Err(e) => {
                self.base = Some(snap);
                return Err(e);
            }
        };
        release(&source, &snap).await;
        let next = ArchiveCursor {
            lsn: m.lsn,
            chain: m.id.clone(),
        };
        let engine = self.engine.clone();
        blocking(move || engine.set_archive_cursor(next)).await??;
        self.position = None;
        self.window_loaded = true;
        let s = &self.stats;
        s.window_start_ns.store(m.time, Ordering::Relaxed);
        s.window_end_ns.store(m.time, Ordering::Relaxed);
        s.archived_lsn.store(m.lsn, Ordering::Relaxed);
        tracing::info!(chain = %m.id, lsn = m.lsn, "archive chain started from snapshot");
        Ok(Step::NewChain {
            chain: m.id.clone(),
            lsn: m.lsn,
        })
    }

    /// The manifest of `snap`: the one an earlier attempt wrote (its reply lost), or a new
    /// backup of it.
    async fn back_up_base(&self, snap: &Snapshot, resumed: bool) -> Result<Arc<Manifest>> {
        if resumed
            && let Some(m) = self.repo.newest_manifest_of(&snap.node_id).await?
            && m.lsn == snap.lsn
            && m.time == snap.taken_at
        {
            tracing::info!(snapshot = %m.id, "adopting the chain start's manifest written by a failed attempt");
            return Ok(m);
        }
        let progress = Arc::new(Progress::default());
        backup(self.repo.clone(), snap, &BackupOptions::default(), progress).await
    }
}

impl Drop for Shipper {
    /// A pending chain start's snapshot is released with the shipper (else its pin would
    /// hold files until it expires).
    fn drop(&mut self) {
        if let Some(s) = self.base.take()
            && let Err(e) = backup_api::release_snapshot(&self.engine, &s.id)
        {
            tracing::warn!(snapshot = %s.id, error = %e, "could not release the archive chain's pending snapshot");
        }
    }
}

fn age_ns(s: &Snapshot) -> i64 {
    chrono::Utc::now()
        .timestamp_nanos_opt()
        .unwrap_or(i64::MAX)
        .saturating_sub(s.taken_at)
}

async fn release(source: &EngineSource, s: &Snapshot) {
    if let Err(e) = source.release(&s.id).await {
        tracing::warn!(snapshot = %s.id, error = %e, "could not release the archive chain's snapshot; its pin expires on its own");
    }
}
