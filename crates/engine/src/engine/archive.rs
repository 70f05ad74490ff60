//! The archive hold: WAL that continuous archiving has not shipped yet is not deleted.
//!
//! With [`EngineOptions::archive_max_pending`](super::EngineOptions) set, the engine keeps an
//! archive cursor (every frame with an LSN at or below it is in the archive) in the data
//! directory's `ARCHIVE` file (`docs/format/data-dir.md`), and a flush deletes WAL segments only
//! up to `min(checkpoint, cursor)`. What the hold keeps is bounded: once the segments kept only
//! for the archive exceed `max_pending` bytes, the engine deletes them anyway (the disk and
//! ingest come first), logs an error and counts a gap; the archiver sees the LSNs it missed and
//! starts a new chain from a fresh snapshot. The choice is documented in `docs/OPERATIONS.md`.
//!
//! The hold's mutex is a leaf: taken under `wal` (flush publish) or alone.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{frame, read_framed, write_atomic};
use crate::vfs::Vfs;
use crate::wal::SegmentMeta;

use super::state::lock;

pub const ARCHIVE_FILE: &str = "ARCHIVE";
pub const ARCHIVE_MAGIC: &[u8; 8] = b"STRATARC";
pub const ARCHIVE_VERSION: u32 = 1;

/// Where continuous archiving stands: every frame with LSN `<= lsn` is archived, in `chain`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveCursor {
    pub lsn: u64,
    /// The archive chain the frames went to (chosen by the archiver; empty before it started).
    pub chain: String,
}

pub fn read_cursor(vfs: &dyn Vfs, dir: &Path) -> Result<Option<ArchiveCursor>> {
    let path = dir.join(ARCHIVE_FILE);
    if !vfs.exists(&path) {
        return Ok(None);
    }
    let payload = read_framed(vfs, &path, ARCHIVE_MAGIC, ARCHIVE_VERSION)?;
    serde_json::from_slice(&payload)
        .map(Some)
        .map_err(|e| Error::corrupt(&path, format!("archive cursor JSON: {e}")))
}

fn write_cursor(vfs: &dyn Vfs, dir: &Path, c: &ArchiveCursor) -> Result<()> {
    let json = serde_json::to_vec(c).map_err(|e| Error::InvalidInput(e.to_string()))?;
    write_atomic(
        vfs,
        &dir.join(ARCHIVE_FILE),
        &frame(ARCHIVE_MAGIC, ARCHIVE_VERSION, &json),
    )
}

/// The hold of a read-write engine (inert when archiving is off).
pub struct Hold {
    max_pending: Option<u64>,
    cursor: Mutex<ArchiveCursor>,
    /// Times the bound was passed and unarchived WAL was deleted.
    pub gaps: AtomicU64,
    /// Bytes of WAL kept only for the archive at the last flush.
    pub pending_bytes: AtomicU64,
}

impl Hold {
    /// Load the cursor at open. Without a cursor file yet, the hold starts at the checkpoint:
    /// nothing after it is deleted until the archiver says where it stands.
    pub fn load(vfs: &dyn Vfs, dir: &Path, max_pending: Option<u64>, ckpt: u64) -> Result<Hold> {
        let cursor = match max_pending {
            Some(_) => read_cursor(vfs, dir)?.unwrap_or(ArchiveCursor {
                lsn: ckpt,
                chain: String::new(),
            }),
            None => ArchiveCursor::default(),
        };
        Ok(Hold {
            max_pending,
            cursor: Mutex::new(cursor),
            gaps: AtomicU64::new(0),
            pending_bytes: AtomicU64::new(0),
        })
    }

    pub fn enabled(&self) -> bool {
        self.max_pending.is_some()
    }

    pub fn cursor(&self) -> Option<ArchiveCursor> {
        self.enabled().then(|| lock(&self.cursor).clone())
    }

    /// Record (durably) that everything through `c.lsn` is archived in `c.chain`.
    pub fn set(&self, vfs: &dyn Vfs, dir: &Path, c: ArchiveCursor) -> Result<()> {
        if !self.enabled() {
            return Err(Error::InvalidInput(
                "archiving is not enabled on this engine (archive_max_pending unset)".into(),
            ));
        }
        let mut cur = lock(&self.cursor);
        write_cursor(vfs, dir, &c)?;
        *cur = c;
        Ok(())
    }

    /// The LSN through which a flush at checkpoint `cut` may delete WAL, given the segments.
    pub fn deletable_through(&self, cut: u64, segments: &[SegmentMeta]) -> u64 {
        let Some(max) = self.max_pending else {
            return cut;
        };
        let cursor = lock(&self.cursor).lsn;
        if cursor >= cut {
            self.pending_bytes.store(0, Ordering::Relaxed);
            return cut;
        }
        let held: u64 = segments
            .iter()
            .filter(|s| matches!(s.lsns, Some((_, last)) if last > cursor))
            .map(|s| s.size)
            .sum();
        self.pending_bytes.store(held, Ordering::Relaxed);
        if held <= max {
            return cursor;
        }
        self.gaps.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            archived_through = cursor,
            checkpoint = cut,
            pending_bytes = held,
            max_pending = max,
            "WAL not yet archived exceeds archive.max_pending: deleting it to protect the disk; \
             the archive has a gap after LSN {cursor} and archiving restarts from a fresh snapshot"
        );
        cut
    }
}

/// One WAL record as the archiver ships it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    pub lsn: u64,
    pub kind: u8,
    /// Commit time (Unix ns); 0 for a record of a v1 segment (committed before the upgrade).
    pub commit_time_ns: i64,
    pub payload: Vec<u8>,
}

/// Where the last record returned by [`read_after`] ends, to continue from without reading
/// the segment again from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalPosition {
    pub seq: u64,
    pub offset: u64,
    pub lsn: u64,
}

/// Records after an LSN, all durable.
#[derive(Debug, Clone, Default)]
pub struct WalTail {
    pub records: Vec<WalRecord>,
    /// Where the last record ends.
    pub position: Option<WalPosition>,
    /// The engine's durable LSN when read: with no records returned and `after` below it, the
    /// WAL after `after` is gone (a gap).
    pub durable_lsn: u64,
}

/// Durable WAL records with LSN above `after`, in LSN order, at most about `max_bytes` of
/// payload. `from` (the position a previous call returned) skips what was already read.
pub fn read_after(
    inner: &super::state::Inner,
    after: u64,
    from: Option<WalPosition>,
    max_bytes: usize,
) -> Result<WalTail> {
    let durable_lsn = lock(&inner.writes.durable).done_lsn;
    let mut tail = WalTail {
        durable_lsn,
        ..Default::default()
    };
    if durable_lsn <= after {
        return Ok(tail);
    }
    let segments = match lock(&inner.writes.wal).as_ref() {
        Some(w) => w.segments(),
        None => return Err(Error::InvalidInput("engine is open read-only".into())),
    };
    let from = from.filter(|p| p.lsn == after);
    let mut bytes_out = 0usize;
    for s in segments {
        if matches!(s.lsns, Some((_, last)) if last <= after) {
            continue;
        }
        if let Some(p) = from
            && s.seq < p.seq
        {
            continue;
        }
        let start = match from {
            Some(p) if p.seq == s.seq => p.offset,
            _ => 0,
        };
        let Some(buf) = read_segment_from(inner.vfs(), &s.path, start)? else {
            continue; // deleted meanwhile (past the archive bound): the caller sees the gap
        };
        let base = start.saturating_sub(crate::wal::HEADER_LEN as u64);
        let mut full = false;
        crate::wal::scan_segment(&s.path, &buf, true, 0, &mut |f| {
            if full || f.lsn <= after || f.lsn > durable_lsn {
                return Ok(());
            }
            bytes_out += f.payload.len();
            tail.records.push(WalRecord {
                lsn: f.lsn,
                kind: f.kind,
                commit_time_ns: f.commit_time_ns.unwrap_or(0),
                payload: f.payload.to_vec(),
            });
            tail.position = Some(WalPosition {
                seq: s.seq,
                offset: base + f.end as u64,
                lsn: f.lsn,
            });
            full = bytes_out >= max_bytes;
            Ok(())
        })?;
        if full {
            break;
        }
    }
    if tail.records.is_empty() && from.is_some() {
        // A stale position (a rewritten segment): read from the segments' starts.
        return read_after(inner, after, None, max_bytes);
    }
    Ok(tail)
}

/// The segment's header followed by its bytes from `offset` (all of it for 0); `None` when
/// the file is gone.
fn read_segment_from(vfs: &dyn Vfs, path: &Path, offset: u64) -> Result<Option<Vec<u8>>> {
    let f = match vfs.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let size = f.size().map_err(|e| Error::io(path, e))?;
    let hl = crate::wal::HEADER_LEN as u64;
    if size < hl {
        return Ok(Some(Vec::new()));
    }
    let offset = offset.max(hl).min(size);
    let mut buf = vec![0u8; (hl + size - offset) as usize];
    f.read_exact_at(&mut buf[..hl as usize], 0)
        .map_err(|e| Error::io(path, e))?;
    f.read_exact_at(&mut buf[hl as usize..], offset)
        .map_err(|e| Error::io(path, e))?;
    Ok(Some(buf))
}

impl super::Engine {
    /// The archive cursor, when archiving is enabled ([`super::EngineOptions::archive_max_pending`]).
    pub fn archive_cursor(&self) -> Option<ArchiveCursor> {
        self.inner.archive.cursor()
    }

    /// Record durably that every record through `c.lsn` is archived: WAL up to it may go.
    pub fn set_archive_cursor(&self, c: ArchiveCursor) -> Result<()> {
        self.inner
            .archive
            .set(self.inner.vfs(), &self.inner.env.dir, c)
    }

    /// Durable WAL records after `after` (see [`read_after`]).
    pub fn read_wal_after(
        &self,
        after: u64,
        from: Option<WalPosition>,
        max_bytes: usize,
    ) -> Result<WalTail> {
        read_after(&self.inner, after, from, max_bytes)
    }

    /// Times unarchived WAL was deleted past the bound, and the bytes held at the last flush.
    pub fn archive_hold_stats(&self) -> (u64, u64) {
        (
            self.inner.archive.gaps.load(Ordering::Relaxed),
            self.inner.archive.pending_bytes.load(Ordering::Relaxed),
        )
    }
}
