//! The engine handle. (Skeleton: the storage-engine issue fills this in; the signatures are the
//! contract the server, query and backup crates code against.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::model::{Catalog, GroupSettings, Point};
use crate::scan::{ScanRequest, SeriesData};
use crate::snapshot::Snapshot;

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
    /// `always`, `never`, or `interval:<duration>` (e.g. `interval:1s`, `interval:250ms`).
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
                parse_duration(d).map(FsyncPolicy::Interval).ok_or_else(|| {
                    Error::InvalidInput(format!("fsync policy '{s}': bad duration '{d}'"))
                })
            }
        }
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    match unit {
        "ns" => Some(Duration::from_nanos(n)),
        "us" => Some(Duration::from_micros(n)),
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n * 60)),
        _ => None,
    }
}

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
    /// Run background merges and TTL drops (off in some tests).
    pub background: bool,
}

impl EngineOptions {
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        EngineOptions {
            data_dir: data_dir.as_ref().to_path_buf(),
            fsync: FsyncPolicy::Always,
            node_id: None,
            memtable_bytes: 64 << 20,
            memtable_age: Duration::from_secs(30),
            background: true,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    pub points_written: u64,
    pub wal_bytes: u64,
    pub wal_fsyncs: u64,
    pub parts: u64,
    pub series: u64,
    pub merges: u64,
    pub segments_dropped: u64,
    pub memtable_bytes: u64,
    pub last_lsn: u64,
}

/// An open data directory. Cheap to share (`Arc<Engine>`); all methods take `&self`.
pub struct Engine {
    _opts: EngineOptions,
}

impl Engine {
    /// Open (or create) a data directory: take its lock, load manifests, remove anything
    /// unpublished, replay the WAL. A second process gets [`Error::Locked`].
    pub fn open(opts: EngineOptions) -> Result<Engine> {
        Ok(Engine { _opts: opts })
    }

    /// Open a data or snapshot directory read-only with no lock and no background work
    /// (queries on a copy, on a snapshot, on a restored staging dir). The WAL range is replayed
    /// in memory; nothing on disk changes.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Engine> {
        Ok(Engine {
            _opts: EngineOptions::new(dir),
        })
    }

    /// Write a batch atomically: either every point is accepted or none (e.g. a field type
    /// conflict rejects the whole batch). Returns the batch's LSN once durable per the fsync
    /// policy. Creates the group with default settings if it does not exist.
    pub fn write(&self, _group: &str, _points: &[Point]) -> Result<u64> {
        Err(Error::InvalidInput("engine not implemented yet".into()))
    }

    pub fn scan(&self, _req: &ScanRequest) -> Result<Vec<SeriesData>> {
        Err(Error::InvalidInput("engine not implemented yet".into()))
    }

    pub fn catalog(&self) -> Catalog {
        Catalog::default()
    }

    /// Create a group or change its settings.
    pub fn put_group(&self, _name: &str, _settings: GroupSettings) -> Result<()> {
        Err(Error::InvalidInput("engine not implemented yet".into()))
    }

    /// Delete a group and all its data.
    pub fn delete_group(&self, _name: &str) -> Result<()> {
        Err(Error::InvalidInput("engine not implemented yet".into()))
    }

    /// Take a consistent snapshot (see [`Snapshot`]). Writers are held only for a short
    /// critical section. Release it with [`Engine::release_snapshot`].
    pub fn snapshot(&self) -> Result<Snapshot> {
        Err(Error::InvalidInput("engine not implemented yet".into()))
    }

    pub fn release_snapshot(&self, _id: &str) -> Result<()> {
        Ok(())
    }

    /// Flush every memtable to parts (and fsync).
    pub fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Rebuild the series index from parts alone.
    pub fn rebuild_index(&self) -> Result<()> {
        Ok(())
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats::default()
    }

    pub fn node_id(&self) -> &str {
        ""
    }

    /// Flush, fsync and release the lock.
    pub fn close(self) -> Result<()> {
        Ok(())
    }
}
