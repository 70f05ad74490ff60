//! The types of a snapshot, the seam between the engine and the backup crate (which reaches
//! them through [`crate::backup_api`]).
//!
//! A snapshot is a pinned set of immutable parts plus the WAL cut at one LSN. Its file list
//! describes a complete, openable data directory: each file has the path it takes in that
//! tree (`rel_path`) and where to read it now (`source`): pinned part files where they live in
//! the data directory, the copied WAL cut under `snapshots/<id>/`, and the small metadata
//! files (ENGINE, CHECKPOINT, shard manifests) inline. Restore recreates the tree in a staging
//! directory and opens it with [`crate::Engine::open`], which replays the WAL range and
//! rebuilds the series index.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::{Catalog, Timestamp};

/// A file of a part, as recorded in the part's metadata (written at flush/merge time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// File name inside the part directory.
    pub name: String,
    pub size: u64,
    /// BLAKE3 digest of the whole file.
    pub digest: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    pub group: String,
    /// Segment start, ns since the epoch.
    pub segment: Timestamp,
    pub shard: u32,
    /// Engine-wide, never reused.
    pub part_id: u64,
    pub min_ts: Timestamp,
    pub max_ts: Timestamp,
    pub rows: u64,
    pub series: u64,
    /// Measures with rows in this part.
    pub measures: Vec<String>,
    /// Part directory relative to the data (or snapshot) directory.
    pub rel_dir: PathBuf,
    pub files: Vec<FileInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalSegmentInfo {
    /// Path relative to the snapshot directory.
    pub rel_path: PathBuf,
    pub first_lsn: u64,
    pub last_lsn: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotFileKind {
    /// A file of an immutable part: its digest comes from the part metadata, no read needed.
    Part,
    /// A WAL segment (or the copied prefix of the active one).
    Wal,
    /// Small metadata: ENGINE header, manifests, catalog, segment headers.
    Meta,
}

/// Where the bytes of a snapshot file are while the snapshot is pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileSource {
    /// An absolute path on the engine's host: a pinned part file in the data directory, or a
    /// WAL segment copied under `snapshots/<id>/`. Valid until the snapshot is released.
    Path(PathBuf),
    /// Small metadata held by the snapshot itself.
    Inline(Vec<u8>),
}

/// Every file of the data directory the snapshot describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFile {
    /// Path inside the described data directory; never absolute, never contains `..`.
    pub rel_path: PathBuf,
    pub size: u64,
    pub digest: [u8; 32],
    pub kind: SnapshotFileKind,
    pub source: FileSource,
}

impl SnapshotFile {
    /// Whether the bytes are compressed already, so a backup gains nothing from compressing
    /// them again: a part's `data.bin` (column encodings, zstd inside where it pays) and
    /// `index.bin` (one zstd frame). WAL segments and metadata are not.
    pub fn is_compressed(&self) -> bool {
        self.kind == SnapshotFileKind::Part
            && self
                .rel_path
                .file_name()
                .is_some_and(|n| n == crate::part::DATA_FILE || n == crate::part::INDEX_FILE)
    }
}

/// Whether `p` is relative, non-empty and free of `..`, root and prefix components.
pub fn is_safe_rel(p: &std::path::Path) -> bool {
    use std::path::Component;
    p.components().next().is_some() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// A consistent, immutable view of the data at one LSN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    /// Every write with LSN <= `lsn` is in the snapshot, none after.
    pub lsn: u64,
    /// Wall-clock time of the cut (ns since the epoch).
    pub taken_at: Timestamp,
    pub node_id: String,
    pub format_version: u32,
    /// Wall-clock time (ns since the epoch) after which the engine drops the pin even if
    /// nobody released it.
    pub expires_at: Timestamp,
    pub catalog: Catalog,
    pub parts: Vec<PartInfo>,
    /// From the oldest unflushed LSN up to the cut.
    pub wal: Vec<WalSegmentInfo>,
    /// Every file, parts, WAL and metadata, with sizes, digests and where to read them.
    pub files: Vec<SnapshotFile>,
}

/// Read a part directory's metadata (no running engine needed): identity, ranges and the file
/// table with sizes and BLAKE3 digests. `rel_dir` is left empty.
pub fn read_part_info(part_dir: &std::path::Path) -> crate::Result<PartInfo> {
    crate::part::PartMeta::read(&crate::vfs::RealVfs, part_dir).map(|m| m.to_info(PathBuf::new()))
}

/// Re-read every file of a part directory and check it against the part metadata (sizes,
/// BLAKE3 digests, framing of the series table). Returns the part's info when intact, and
/// [`crate::Error::Corrupt`] naming the damaged file otherwise.
pub fn verify_part(part_dir: &std::path::Path) -> crate::Result<PartInfo> {
    crate::part::verify_part_files(&crate::vfs::RealVfs, part_dir)
        .map(|m| m.to_info(PathBuf::new()))
}
