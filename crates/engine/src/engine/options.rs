//! How an engine is opened: data directory, durability policy, flush triggers, background
//! work and the file system it runs on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::vfs::{RealVfs, Vfs};

/// When an acknowledged write reaches stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fsync before acknowledging (group commit). Survives power loss. The default.
    Always,
    /// write(2) before acknowledging, fsync at most this far apart. Survives kill -9.
    Interval(Duration),
    /// write(2) before acknowledging, fsync left to the OS.
    Never,
}

impl std::str::FromStr for FsyncPolicy {
    type Err = Error;
    /// `always`, `never`, or `interval:<duration>` (e.g. `interval:1s`, `interval:250ms`; the
    /// syntax of [`crate::duration`]).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            _ => {
                let Some(d) = s.strip_prefix("interval:") else {
                    return Err(Error::InvalidInput(format!(
                        "fsync policy '{s}': expected always, never or interval:<duration>"
                    )));
                };
                crate::duration::parse(d)
                    .map(FsyncPolicy::Interval)
                    .map_err(|e| Error::InvalidInput(format!("fsync policy '{s}': {e}")))
            }
        }
    }
}

/// Default of [`EngineOptions::idle_flush`].
pub const DEFAULT_IDLE_FLUSH: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub data_dir: PathBuf,
    pub fsync: FsyncPolicy,
    /// Identity of this node, recorded in the data dir and in snapshots. Generated on first
    /// open when `None`.
    pub node_id: Option<String>,
    /// Flush a shard's memtable when it holds this many bytes.
    pub memtable_bytes: usize,
    /// ... or when its oldest row is this old.
    pub memtable_age: Duration,
    /// ... or when it got no write for this long, so data of a quiet (or finished) ingest
    /// leaves the WAL for parts: backups then carry parts, not WAL, and restores replay
    /// nothing. `Duration::ZERO` turns the idle trigger off.
    pub idle_flush: Duration,
    /// Run background merges and TTL drops (off in some tests).
    pub background: bool,
    /// The file system the engine runs on: [`RealVfs`] except in power-loss tests.
    pub vfs: Arc<dyn Vfs>,
    /// Flush the memtables before each snapshot (default), so snapshots and backups carry
    /// parts rather than WAL. Off, a snapshot carries the WAL since the last flush instead
    /// (tests of WAL replay after restore use this).
    pub snapshot_flush: bool,
    /// Most fields one point may carry; a batch with a wider point is refused.
    pub max_fields_per_point: usize,
    /// Most distinct fields one measure may have; a batch adding more is refused.
    pub max_fields_per_measure: usize,
    /// Continuous archiving: `Some(bytes)` keeps WAL not yet archived (the `ARCHIVE` cursor)
    /// until this much is waiting, then deletes it and records a gap (see `archive.rs`).
    /// `None` (default): WAL is deleted as soon as it is in parts.
    pub archive_max_pending: Option<u64>,
}

/// Default of [`EngineOptions::max_fields_per_point`].
pub const DEFAULT_MAX_FIELDS_PER_POINT: usize = 1024;
/// Default of [`EngineOptions::max_fields_per_measure`].
pub const DEFAULT_MAX_FIELDS_PER_MEASURE: usize = 4096;

impl EngineOptions {
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        EngineOptions {
            data_dir: data_dir.as_ref().to_path_buf(),
            fsync: FsyncPolicy::Always,
            node_id: None,
            memtable_bytes: 64 << 20,
            memtable_age: Duration::from_secs(30),
            idle_flush: DEFAULT_IDLE_FLUSH,
            background: true,
            vfs: Arc::new(RealVfs),
            snapshot_flush: true,
            max_fields_per_point: DEFAULT_MAX_FIELDS_PER_POINT,
            max_fields_per_measure: DEFAULT_MAX_FIELDS_PER_MEASURE,
            archive_max_pending: None,
        }
    }
}
