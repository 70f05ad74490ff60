//! The engine API the backup crate uses, and nothing else of the engine (a test,
//! `crates/backup/tests/engine_seam.rs`, keeps it so).
//!
//! - online restore ([`adopt`]): stage restored groups inside a running engine's data
//!   directory and publish them in one step;
//! - restore ([`restore`]): inspect a target, stage, check and prepare a staged directory,
//!   swap it in, recover an interrupted swap;
//! - selective restore ([`select`]): keep only the fetched parts of a partial data
//!   directory, copy a selection (groups, measures, tags, time range) into a fresh engine,
//!   re-sharding it;
//! - the catalog as the repository stores it ([`catalog`]): a versioned export that belongs
//!   to the repository format, not the engine's in-memory type;
//! - snapshots (below): take and release a pinned snapshot, open its files where they are.

pub mod adopt;
pub mod archive;
pub mod catalog;
pub mod content;
pub mod groups;
pub mod restore;
pub mod select;

pub use catalog::{CATALOG_EXPORT_VERSION, CatalogExport};
pub use content::{
    MeasureContent, ScanTotals, check_part_content, part_content, part_source_dir, scan_totals,
};
pub use groups::restrict_snapshot;
pub use restore::*;
pub use select::{
    CopyStats, GroupSelection, MAX_SHARDS, Selection, copy_selection, keep_only_parts, open_target,
    part_series,
};

// The engine's API for backup: everything the backup crate may use of the engine, and
// nothing else (`crates/backup/tests/engine_seam.rs` checks that it imports only this
// module).
//
// Snapshot side (normative description of the life cycle in `docs/format/pins.md`):
// - [`take_snapshot`] pins the published parts and the WAL cut at one LSN and lists every
//   file of the data directory the snapshot describes, with size, BLAKE3 and where to read it
//   ([`FileSource`]);
// - [`open_file`] opens one of those files for reading, where it is (pinned part files in the
//   data directory, the WAL copy under `snapshots/<id>/`, metadata held in memory);
// - [`wal_range`] is the LSN range of the WAL the snapshot carries;
// - [`release_snapshot`] drops the pin (deferred part deletes happen then).
//
// The snapshot is valid until released or until [`SNAPSHOT_TTL`] after it was taken, across a
// restart of the engine too: another process (`strata backup --server`) reads its files while
// the server holds the pin.

use std::io::Read;
use std::path::Path;

pub use crate::engine::{Engine, EngineOptions, PinStatus, SNAPSHOT_TTL};
pub use crate::error::{Error, Result};
pub use crate::model::Catalog;
pub use crate::snapshot::{
    FileInfo, FileSource, PartInfo, Snapshot, SnapshotFile, SnapshotFileKind, WalSegmentInfo,
    is_safe_rel,
};

/// Take (and pin) a snapshot of a read-write engine.
pub fn take_snapshot(engine: &Engine) -> Result<Snapshot> {
    engine.snapshot()
}

/// Release snapshot `id` ([`Error::SnapshotNotFound`] when it was released or expired).
pub fn release_snapshot(engine: &Engine, id: &str) -> Result<()> {
    engine.release_snapshot(id)
}

/// A reader on one file of a pinned snapshot.
#[derive(Debug)]
pub enum SnapshotReader {
    File(std::fs::File),
    Inline(std::io::Cursor<Vec<u8>>),
}

impl Read for SnapshotReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            SnapshotReader::File(f) => f.read(buf),
            SnapshotReader::Inline(c) => c.read(buf),
        }
    }
}

/// Open a file of a pinned snapshot for reading. The caller checks size and digest while it
/// reads (the listing recorded them).
pub fn open_file(file: &SnapshotFile) -> Result<SnapshotReader> {
    match &file.source {
        FileSource::Path(p) => std::fs::File::open(p)
            .map(SnapshotReader::File)
            .map_err(|e| Error::io(p, e)),
        FileSource::Inline(b) => Ok(SnapshotReader::Inline(std::io::Cursor::new(b.clone()))),
    }
}

/// The LSN range of the WAL a snapshot carries (records after the checkpoint up to the cut),
/// or `None` when everything is in parts.
pub fn wal_range(snap: &Snapshot) -> Option<(u64, u64)> {
    let first = snap.wal.iter().map(|w| w.first_lsn).min()?;
    let last = snap.wal.iter().map(|w| w.last_lsn).max()?;
    Some((first, last))
}

/// Write the data directory a snapshot describes into `dest` (which must not exist or be
/// empty): every file copied from its source. Opening `dest` gives the data at the cut.
pub fn export_snapshot(snap: &Snapshot, dest: &Path) -> Result<()> {
    for f in &snap.files {
        if !is_safe_rel(&f.rel_path) {
            return Err(Error::InvalidInput(format!(
                "snapshot lists an unsafe path {}",
                f.rel_path.display()
            )));
        }
        let to = dest.join(&f.rel_path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut r = open_file(f)?;
        let mut out = std::fs::File::create(&to).map_err(|e| Error::io(&to, e))?;
        std::io::copy(&mut r, &mut out).map_err(|e| Error::io(&to, e))?;
    }
    Ok(())
}

/// The file-system seam, for a read-only engine over something other than a directory (a
/// repository snapshot: `strata query --repo`, attachments).
pub use crate::vfs::{DirEntry, LockGuard, Vfs, VfsFile};

/// Open a read-only engine whose data directory `dir` is served by `vfs` (no lock, no
/// background work; everything it reads goes through `vfs`, nothing is written).
pub fn open_read_only_on(vfs: std::sync::Arc<dyn Vfs>, dir: &Path) -> Result<Engine> {
    let mut opts = EngineOptions::new(dir);
    opts.vfs = vfs;
    Engine::open_read_only_with(opts)
}

/// Read a part directory's metadata (no running engine needed): identity, ranges and the file
/// table with sizes and BLAKE3 digests.
pub use crate::snapshot::{read_part_info, verify_part};
