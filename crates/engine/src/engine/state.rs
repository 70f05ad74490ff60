//! Shared state of an open engine and its lock order.
//!
//! Lock order (never take an earlier lock while holding a later one):
//! `flush_lock` → `layout` → `wal` → `commit` → `state` → memtable `RwLock`s; `layout` →
//! `pins`, and `pins` is never held while taking any other lock.
//! - `commit` assigns LSNs, validates against the catalog and inserts into the active memtable;
//!   it is the only lock writers hold (plus `wal` for the group-commit leader).
//! - `layout` serialises changes of the published part set (flush publish, merges, TTL, group
//!   deletion) with snapshot linking, so a snapshot sees one consistent part set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crate::catalog::CatalogState;
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
}

pub struct Durable {
    /// Highest LSN written (and fsynced when the policy says so).
    pub done_lsn: u64,
    pub last_sync: Instant,
    pub unsynced: bool,
}

pub struct Inner {
    pub opts: EngineOptions,
    pub dir: PathBuf,
    pub read_only: bool,
    pub node_id: String,
    pub _lock: Option<LockGuard>,
    /// Serialises flushes; holds the memtable of a flush that failed for want of file
    /// descriptors, which the next flush writes first (see `flush::Frozen`).
    pub flush_lock: Mutex<Option<super::flush::Frozen>>,
    pub layout: Mutex<()>,
    pub wal: Mutex<Option<WalWriter>>,
    pub commit: Mutex<Commit>,
    pub state: RwLock<ReadState>,
    pub durable: Mutex<Durable>,
    pub poisoned: Mutex<Option<String>>,
    /// Live snapshots' pinned parts and the deletes they defer (see `pins.rs`).
    pub pins: Mutex<super::pins::Pins>,
    pub next_part_id: AtomicU64,
    pub checkpoint_lsn: AtomicU64,
    pub shutdown: AtomicBool,
    pub stats: Stats,
    pub wake: (
        crossbeam_channel::Sender<()>,
        crossbeam_channel::Receiver<()>,
    ),
}

impl Inner {
    pub fn vfs(&self) -> &dyn Vfs {
        &*self.opts.vfs
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
