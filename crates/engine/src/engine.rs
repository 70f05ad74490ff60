//! The engine handle: the public API over the write path (`commit`), flushes (`flush`), reads
//! (`read`), snapshots (`snap`), merges and TTL (`merge`, `background`) and recovery (`open`).

pub(crate) mod adopt;
pub(crate) mod adopt_journal;
pub(crate) mod archive;
mod background;
mod commit;
mod concat;
mod durable;
mod fanout;
mod flush;
mod merge;
mod newest;
mod open;
mod options;
mod pins;
mod publish;
mod read;
mod route;
mod series;
mod snap;
pub(crate) mod state;
mod summarize;
mod tables;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use crate::batch::PointBatch;
use crate::error::Result;
use crate::model::{Catalog, GroupSettings, Point};
use crate::scan::{ScanRequest, ScanSink, SeriesData};
use crate::snapshot::Snapshot;

use state::{Inner, lock, read};

pub use options::{
    DEFAULT_MAX_FIELDS_PER_MEASURE, DEFAULT_MAX_FIELDS_PER_POINT, EngineOptions, FsyncPolicy,
};
pub use pins::decode as decode_pins;
pub use snap::SNAPSHOT_TTL;

pub(crate) use route::point_expired as route_point_expired;

/// See [`Engine::pin_status`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PinStatus {
    /// Snapshots taken and neither released nor expired.
    pub snapshots: usize,
    /// Part directories no longer published, kept for those snapshots.
    pub deferred_parts: usize,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    pub points_written: u64,
    pub wal_bytes: u64,
    pub wal_fsyncs: u64,
    pub parts: u64,
    /// Series in parts (approximate: per shard, the largest part's series count).
    pub series: u64,
    pub merges: u64,
    pub segments_dropped: u64,
    pub memtable_bytes: u64,
    pub last_lsn: u64,
    /// Parts whose series table is in memory (loaded by a scan; see `part::read`).
    pub series_tables_loaded: u64,
}

/// An open data directory. Cheap to share (`Arc<Engine>`); all methods take `&self`.
pub struct Engine {
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

impl Engine {
    /// Open (or create) a data directory: take its lock, load manifests, remove anything
    /// unpublished, replay the WAL. A second process gets [`Error::Locked`].
    pub fn open(opts: EngineOptions) -> Result<Engine> {
        let inner = Arc::new(open::open(opts, false)?);
        // An online restore a crash interrupted was rolled forward by replay: make it durable
        // before anyone writes.
        adopt::finish_at_open(&inner)?;
        let threads = if inner.env.opts.background {
            background::spawn(&inner)?
        } else {
            Vec::new()
        };
        Ok(Engine { inner, threads })
    }

    /// Open a data or snapshot directory read-only with no lock and no background work
    /// (queries on a copy, on a snapshot, on a restored staging dir). The WAL range is replayed
    /// in memory; nothing on disk changes.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Engine> {
        Self::open_read_only_with(EngineOptions::new(dir))
    }

    /// [`Engine::open_read_only`] on the file system `opts.vfs` (a backup snapshot served
    /// from a repository, for one): no lock, no background work, nothing written through it.
    pub fn open_read_only_with(mut opts: EngineOptions) -> Result<Engine> {
        opts.background = false;
        let inner = Arc::new(open::open(opts, true)?);
        Ok(Engine {
            inner,
            threads: Vec::new(),
        })
    }

    /// Write a batch atomically: either every point is accepted or none (e.g. a field type
    /// conflict rejects the whole batch). Returns the batch's LSN once durable per the fsync
    /// policy. Creates the group with default settings if it does not exist.
    pub fn write(&self, group: &str, points: &[Point]) -> Result<u64> {
        self.write_batch(group, PointBatch::from_points(points))
    }

    /// [`Engine::write`] for a batch that may borrow its strings (the ingest path: no
    /// allocation per point). The batch's tags are sorted by key in place.
    pub fn write_batch(&self, group: &str, batch: PointBatch<'_>) -> Result<u64> {
        let c = commit::write(&self.inner, group, batch)?;
        let limit = self.inner.env.opts.memtable_bytes;
        if c.mem_bytes >= limit.saturating_mul(4) {
            // Flushing fell far behind: this writer helps (bounded memory beats latency here).
            // Out of file descriptors, the write is still durable and acknowledged; the
            // background flush retries.
            match flush::flush(&self.inner) {
                Err(e) if e.is_descriptor_exhaustion() => {}
                r => r?,
            }
        } else if c.mem_bytes >= limit {
            let _ = self.inner.background.wake.0.try_send(());
        }
        Ok(c.lsn)
    }

    pub fn scan(&self, req: &ScanRequest) -> Result<Vec<SeriesData>> {
        read::scan(&self.inner, req)
    }

    /// [`Engine::scan`] one series at a time: memory holds one series' data from the parts,
    /// not the whole result, and `sink` can stop the scan early.
    pub fn scan_each(&self, req: &ScanRequest, sink: &mut dyn ScanSink) -> Result<()> {
        read::scan_each(&self.inner, req, sink)
    }

    /// [`Engine::scan_each`] for an aggregation: blocks that lie wholly inside the range and
    /// one bucket of `summaries`, with no other source of their series overlapping them,
    /// come as [`crate::scan::BlockSummary`] instead of decoded points.
    pub fn scan_summarized(
        &self,
        req: &ScanRequest,
        summaries: crate::scan::SummaryRequest,
        sink: &mut dyn crate::scan::SummarySink,
    ) -> Result<()> {
        read::scan_summarized(&self.inner, req, Some(summaries), sink)
    }

    pub fn catalog(&self) -> Catalog {
        lock(&self.inner.writes.commit).catalog.to_public()
    }

    /// Create a group or change its settings.
    pub fn put_group(&self, name: &str, settings: GroupSettings) -> Result<()> {
        commit::put_group(&self.inner, name, settings)
    }

    /// Delete a group and all its data.
    pub fn delete_group(&self, name: &str) -> Result<()> {
        commit::delete_group(&self.inner, name)
    }

    /// Create the staging directory `adopt/<id>/` of an online restore (see
    /// [`crate::backup_api::adopt`]); returns its path.
    pub fn create_staging(&self, id: &str) -> Result<std::path::PathBuf> {
        adopt::create_staging(&self.inner, id)
    }

    /// Publish whole groups from a finished staging directory in one step.
    pub fn adopt(&self, staged: &Path, groups: &[adopt::AdoptGroup]) -> Result<adopt::Adopted> {
        adopt::adopt(&self.inner, staged, groups)
    }

    /// Remove a staging directory that will not be adopted.
    pub fn discard_staging(&self, staged: &Path) -> Result<()> {
        adopt::discard_staging(&self.inner, staged)
    }

    /// Take a consistent snapshot (see [`Snapshot`]): pin the published parts and copy the WAL
    /// cut. The memtables are flushed first (writers go on into a fresh memtable meanwhile),
    /// so the snapshot holds parts and only the WAL written since. Writers are held only for a
    /// short critical section. Release it with [`Engine::release_snapshot`]; unreleased, it
    /// expires after [`SNAPSHOT_TTL`], across restarts too.
    pub fn snapshot(&self) -> Result<Snapshot> {
        snap::take(&self.inner)
    }

    /// Drop a snapshot's pin; part deletes it deferred happen now.
    pub fn release_snapshot(&self, id: &str) -> Result<()> {
        snap::release(&self.inner, id)
    }

    /// Live snapshots and the unpublished part directories they keep.
    pub fn pin_status(&self) -> PinStatus {
        let p = lock(&self.inner.pins);
        PinStatus {
            snapshots: p.len(),
            deferred_parts: p.deferred_len(),
        }
    }

    /// Flush every memtable to parts (and fsync).
    pub fn flush(&self) -> Result<()> {
        flush::flush(&self.inner)
    }

    /// Rebuild the series index from parts alone.
    pub fn rebuild_index(&self) -> Result<()> {
        read::rebuild_index(&self.inner)
    }

    /// Run merges until no shard needs one (tests and tools; the background does it too).
    pub fn compact(&self) -> Result<()> {
        while merge::merge_once(&self.inner, merge::Policy::Full)? {}
        Ok(())
    }

    /// Run the background merge policy until no shard needs a merge (tests and tools).
    pub fn merge_pending(&self) -> Result<()> {
        while merge::merge_once(&self.inner, merge::Policy::Tiered)? {}
        Ok(())
    }

    /// Drop every segment past its group's TTL now (the background does it periodically).
    pub fn enforce_ttl(&self) -> Result<()> {
        merge::drop_expired(&self.inner)
    }

    pub fn stats(&self) -> EngineStats {
        let i = &self.inner;
        let st = read(&i.published.state);
        let version = st.version.clone();
        let mems: Vec<state::MemRef> = st
            .frozen
            .iter()
            .chain(std::iter::once(&st.active))
            .cloned()
            .collect();
        drop(st);
        let mut parts = 0;
        let mut series_tables_loaded = 0;
        // Distinct series over every part and memtable: a series in several flush windows
        // (several parts) counts once.
        let mut series = crate::sketch::Sketch::default();
        for (k, s) in &version.shards {
            parts += s.parts.len() as u64;
            series_tables_loaded += s.parts.iter().filter(|p| p.index_loaded()).count() as u64;
            for p in &s.parts {
                match p.series_sketch(&k.group) {
                    Ok(sk) => series.merge(&sk),
                    Err(e) => tracing::warn!(part = %p.dir.display(), error = %e, "series count"),
                }
            }
        }
        let mut memtable_bytes = 0;
        for m in &mems {
            let m = read(m);
            memtable_bytes += m.bytes as u64;
            for (g, gm) in &m.groups {
                for s in gm.values().flat_map(|ms| ms.values()) {
                    series.add(crate::sketch::series_hash(g, s.meta.sid()));
                }
            }
        }
        let series = series.estimate();
        EngineStats {
            points_written: i.stats.points_written.load(Ordering::Relaxed),
            wal_bytes: i.stats.wal_bytes.load(Ordering::Relaxed),
            wal_fsyncs: i.stats.wal_fsyncs.load(Ordering::Relaxed),
            parts,
            series,
            merges: i.stats.merges.load(Ordering::Relaxed),
            segments_dropped: i.stats.segments_dropped.load(Ordering::Relaxed),
            memtable_bytes,
            last_lsn: lock(&i.writes.commit).last_lsn,
            series_tables_loaded,
        }
    }

    pub fn node_id(&self) -> &str {
        &self.inner.env.node_id
    }

    /// The data directory this engine serves.
    pub fn data_dir(&self) -> &Path {
        &self.inner.env.dir
    }

    /// Flush, fsync and release the lock.
    pub fn close(mut self) -> Result<()> {
        let res = if self.inner.env.read_only {
            Ok(())
        } else {
            flush::flush(&self.inner)
        };
        self.stop();
        res
    }

    fn stop(&mut self) {
        self.inner.background.shutdown.store(true, Ordering::SeqCst);
        let _ = self.inner.background.wake.0.try_send(());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(w) = lock(&self.inner.writes.wal).as_mut() {
            let _ = w.sync();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Change the node id recorded in a (restored) data directory, atomically. Fails with
/// [`Error::Locked`] while an engine has the directory open.
pub fn set_node_id(data_dir: impl AsRef<Path>, id: &str) -> Result<()> {
    crate::datadir::set_node_id(&crate::vfs::RealVfs, data_dir.as_ref(), id)
}
