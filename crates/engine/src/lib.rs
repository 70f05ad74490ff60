//! Strata storage engine.
//!
//! Owns everything below the HTTP layer: the write-ahead log, memtables, immutable columnar
//! parts in time segments and shards, background merges, TTL drops, the series index and
//! consistent snapshots. The engine is synchronous (named worker threads, bounded channels);
//! async lives at the edges.
//!
//! The public surface is deliberately small:
//! - [`Engine`]: open a data directory, write batches, scan, manage groups, take snapshots;
//! - [`model`]: the data model (groups, points, field values) shared with the query layer;
//! - [`backup_api`]: the seam the backup crate uses (pinned snapshots, their files).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod backup_api;
pub mod batch;
pub mod check;
pub mod datadir;
pub mod duration;
pub mod encoding;
pub mod error;
pub mod model;
pub mod names;
pub mod scan;
pub mod snapshot;
pub mod vfs;

mod catalog;
mod codec;
mod engine;
mod format;
mod manifest;
mod memtable;
mod meta_files;
mod part;
mod record;
mod rows;
mod sketch;
mod wal;

pub use batch::{FieldRef, PointBatch, PointRef};
pub use engine::{
    DEFAULT_MAX_FIELDS_PER_MEASURE, DEFAULT_MAX_FIELDS_PER_POINT, Engine, EngineOptions,
    EngineStats, FsyncPolicy, PinStatus, set_node_id,
};
pub use error::{Error, Result};
pub use model::{FieldType, FieldValue, GroupSettings, Point};
#[doc(hidden)]
pub use part::check_table_payload;
pub use part::summary;
/// Parts rewritten in format v1 for the previous release (`restore --format-version 1`).
pub use part::{rewrite_part_v1, rewrite_parts_v1};
pub use scan::{
    BlockSummary, Column, FieldAgg, Only, ScanRequest, ScanSink, SeriesData, SummaryRequest,
    SummarySink, TagMatcher,
};
pub use snapshot::{
    FileInfo, FileSource, PartInfo, Snapshot, SnapshotFile, SnapshotFileKind, WalSegmentInfo,
};

/// On-disk format version written by this build (data dir, WAL, parts, manifests).
pub const FORMAT_VERSION: u32 = 1;
