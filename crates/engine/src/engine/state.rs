//! Shared state of an open engine, split by owner, and its lock order.
//!
//! [`Inner`] is five parts, each changed by one module (others only read it or call its
//! methods):
//! - [`Env`]: what open decided and never changes (options, directory, node id, the LOCK);
//!   `open.rs`.
//! - [`WritePath`]: LSN assignment, the pending WAL frames, the WAL writer, durability and the
//!   poison flag; `commit.rs` (validate, assign, insert) and `durable.rs` (group commit).
//! - [`Published`]: the part set readers see and the files that name it (manifests,
//!   checkpoint, part ids); `publish.rs`, called by flush, merge, TTL and group deletion under
//!   `layout`.
//! - [`Background`]: the flush serialisation, the wake-up channel and shutdown;
//!   `background.rs` and `flush.rs`.
//! - `pins`: live snapshots and the deletes they defer; `snap.rs` / `pins.rs`.
//!
//! Lock order (never take an earlier lock while holding a later one):
//! `background.flush_lock` → `published.layout` → `writes.wal` → `writes.commit` →
//! `published.state` → memtable `RwLock`s; `published.layout` → `pins`, and `pins` is never
//! held while taking any other lock. `writes.durable` and `writes.poisoned` are leaves (held
//! only to read or set a value).
//! - `commit` assigns LSNs, validates against the catalog and inserts into the active memtable;
//!   it is the only lock writers hold (plus `wal` for the group-commit leader).
//! - `layout` serialises changes of the published part set (flush publish, merges, TTL, group
//!   deletion) with a snapshot pinning the part set, so a snapshot pins one consistent part
//!   set and a part it pins is never deleted under it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crate::catalog::CatalogState;
use crate::error::{Error, Result};
use crate::memtable::Memtable;
use crate::part::PartReader;
use crate::vfs::{LockGuard, Vfs};
use crate::wal::WalWriter;

use super::options::EngineOptions;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardKey {
    pub group: String,
    pub segment: i64,
    pub shard: u32,
}

#[derive(Debug, Clone)]
pub struct ShardState {
    pub epoch: u64,
    pub flushed_lsn: u64,
    pub segment_end: i64,
    pub shards: u32,
    /// Ordered by LSN range (parts of one shard never overlap in LSN).
    pub parts: Vec<Arc<PartReader>>,
}

/// The published part set: immutable, swapped whole.
#[derive(Debug, Clone, Default)]
pub struct Version {
    pub shards: BTreeMap<ShardKey, ShardState>,
}

impl Version {
    /// Shard count of an existing segment, if the segment exists.
    pub fn segment_shards(&self, group: &str, segment: i64) -> Option<u32> {
        let k = ShardKey {
            group: group.to_string(),
            segment,
            shard: 0,
        };
        self.shards
            .range(k..)
            .next()
            .filter(|(k, _)| k.group == group && k.segment == segment)
            .map(|(_, s)| s.shards)
    }
}

pub type MemRef = Arc<RwLock<Memtable>>;

/// What a reader needs: parts plus every memtable not yet in them.
pub struct ReadState {
    pub version: Arc<Version>,
    /// Frozen memtables being flushed (oldest first).
    pub frozen: Vec<MemRef>,
    pub active: MemRef,
}

pub struct Commit {
    pub catalog: CatalogState,
    pub last_lsn: u64,
    /// Encoded frames not yet handed to the WAL writer.
    pub pending: Vec<u8>,
    pub pending_first: u64,
    pub active: MemRef,
    /// LSN of the last memtable freeze (rows of the active memtable are above it).
    pub last_freeze: u64,
    /// Commit time (Unix ns) of the last frame: commit times never go backwards within a run,
    /// so "every batch committed at or before T" is a prefix of the WAL (`docs/format/wal.md`).
    pub last_commit_ns: i64,
}

impl Commit {
    /// The commit time of the next frame: the wall clock, held back from going backwards.
    pub fn commit_time(&mut self) -> i64 {
        self.last_commit_ns = now_ns().max(self.last_commit_ns);
        self.last_commit_ns
    }
}

pub struct Durable {
    /// Highest LSN written (and fsynced when the policy says so).
    pub done_lsn: u64,
    pub last_sync: Instant,
    pub unsynced: bool,
}

/// An open engine: its parts, one owner each (see the module docs).
pub struct Inner {
    pub env: Env,
    pub writes: WritePath,
    pub published: Published,
    pub background: Background,
    /// Live snapshots' pinned parts and the deletes they defer (see `pins.rs`).
    pub pins: Mutex<super::pins::Pins>,
    /// WAL held for continuous archiving (see `archive.rs`).
    pub archive: super::archive::Hold,
    pub stats: Stats,
}

impl Inner {
    pub fn vfs(&self) -> &dyn Vfs {
        &*self.env.opts.vfs
    }
}

/// Fixed at open.
pub struct Env {
    pub opts: EngineOptions,
    pub dir: PathBuf,
    pub read_only: bool,
    pub node_id: String,
    pub _lock: Option<LockGuard>,
}

/// The write path: catalog, LSNs, active memtable, WAL, durability.
pub struct WritePath {
    pub commit: Mutex<Commit>,
    pub wal: Mutex<Option<WalWriter>>,
    pub durable: Mutex<Durable>,
    /// Why writes are refused until reopen (a failed WAL write or fsync, a failed flush).
    poisoned: Mutex<Option<String>>,
}

impl WritePath {
    pub fn new(commit: Commit, wal: Option<WalWriter>, durable: Durable) -> WritePath {
        WritePath {
            commit: Mutex::new(commit),
            wal: Mutex::new(wal),
            durable: Mutex::new(durable),
            poisoned: Mutex::new(None),
        }
    }

    /// Refuse writes until reopen; the first reason is kept. Returns whether this call set it.
    pub fn poison(&self, reason: impl FnOnce() -> String) -> bool {
        let mut p = lock(&self.poisoned);
        if p.is_some() {
            return false;
        }
        *p = Some(reason());
        true
    }

    /// `Err(Poisoned)` once a write or flush failed.
    pub fn check_poisoned(&self) -> Result<()> {
        match lock(&self.poisoned).as_ref() {
            Some(msg) => Err(Error::Poisoned(msg.clone())),
            None => Ok(()),
        }
    }
}

/// The published part set and the counters the files naming it record.
pub struct Published {
    /// Serialises changes of `state.version` (and the manifests) with snapshots.
    pub layout: Mutex<()>,
    pub state: RwLock<ReadState>,
    pub next_part_id: AtomicU64,
    /// LSN of the last published checkpoint.
    pub checkpoint_lsn: AtomicU64,
}

impl Published {
    pub fn new(state: ReadState, next_part_id: u64, checkpoint_lsn: u64) -> Published {
        Published {
            layout: Mutex::new(()),
            state: RwLock::new(state),
            next_part_id: AtomicU64::new(next_part_id),
            checkpoint_lsn: AtomicU64::new(checkpoint_lsn),
        }
    }

    /// The current version (cheap: an `Arc`).
    pub fn version(&self) -> Arc<Version> {
        read(&self.state).version.clone()
    }
}

/// Background work: flush serialisation, wake-ups, shutdown.
pub struct Background {
    /// Serialises flushes; holds the memtable of a flush that failed for want of file
    /// descriptors, which the next flush writes first (see `flush::Frozen`).
    pub flush_lock: Mutex<Option<super::flush::Frozen>>,
    pub shutdown: AtomicBool,
    pub wake: (
        crossbeam_channel::Sender<()>,
        crossbeam_channel::Receiver<()>,
    ),
}

impl Background {
    pub fn new() -> Background {
        Background {
            flush_lock: Mutex::new(None),
            shutdown: AtomicBool::new(false),
            wake: crossbeam_channel::bounded(1),
        }
    }
}

#[derive(Default)]
pub struct Stats {
    pub points_written: AtomicU64,
    pub wal_bytes: AtomicU64,
    pub wal_fsyncs: AtomicU64,
    pub merges: AtomicU64,
    pub segments_dropped: AtomicU64,
}

pub fn data_root(dir: &Path) -> PathBuf {
    dir.join("data")
}

pub fn group_rel(group: &str) -> PathBuf {
    Path::new("data").join(group)
}

pub fn shard_rel(k: &ShardKey) -> PathBuf {
    group_rel(&k.group)
        .join(format!("seg-{}", k.segment))
        .join(format!("shard-{}", k.shard))
}

pub fn parse_seg(name: &str) -> Option<i64> {
    name.strip_prefix("seg-")?.parse().ok()
}

pub fn parse_shard(name: &str) -> Option<u32> {
    name.strip_prefix("shard-")?.parse().ok()
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a lock must not make every later call panic too.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

pub fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}
