//! Continuous archiving's engine API: the archive cursor (WAL not yet archived is kept, up to
//! a bound), durable WAL records after an LSN, and the WAL v2 segment bytes the repository's
//! archive objects carry and a point-in-time restore stages.

use std::io::Write;
use std::path::Path;

pub use crate::engine::archive::{ArchiveCursor, WalPosition, WalRecord, WalTail};
use crate::error::{Error, Result};
use crate::wal;

/// The file name of WAL segment `seq` in a data directory's `wal/`.
pub fn segment_file_name(seq: u64) -> String {
    wal::segment_name(seq)
}

/// A WAL v2 segment (header with sequence number `seq`, then one frame per record) as bytes.
pub fn encode_segment(seq: u64, records: &[WalRecord]) -> Vec<u8> {
    let mut out = wal::segment_header(seq).to_vec();
    for r in records {
        wal::encode_frame(r.lsn, r.kind, r.commit_time_ns, &r.payload, &mut out);
    }
    out
}

/// The records of a whole segment (v1 or v2), every check strict: a torn or damaged frame is
/// an error naming `name`, never a shorter list.
pub fn decode_segment(name: &str, bytes: &[u8]) -> Result<Vec<WalRecord>> {
    let mut out = Vec::new();
    wal::scan_segment(Path::new(name), bytes, false, 0, &mut |f| {
        out.push(WalRecord {
            lsn: f.lsn,
            kind: f.kind,
            commit_time_ns: f.commit_time_ns.unwrap_or(0),
            payload: f.payload.to_vec(),
        });
        Ok(())
    })?;
    Ok(out)
}

/// Add `records` to the WAL of a (staged, not running) data directory as a new segment after
/// its newest one, fsynced: opening the directory replays them after what it already holds.
/// The records must continue the directory's LSNs (the caller checked them against the
/// snapshot's cut).
pub fn append_wal_segment(data_dir: &Path, records: &[WalRecord]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let vfs = crate::vfs::RealVfs;
    let dir = data_dir.join("wal");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let next = wal::list_segments(&vfs, &dir)?
        .last()
        .map_or(1, |(seq, _)| seq + 1);
    let path = dir.join(wal::segment_name(next));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    f.write_all(&encode_segment(next, records))
        .map_err(|e| Error::io(&path, e))?;
    f.sync_all().map_err(|e| Error::io(&path, e))?;
    crate::format::fsync_dir(&vfs, &dir)
}

/// Rewrite every part of a (staged, not running) data directory in part format v1, for the
/// previous release (`restore --format-version 1`): the block summaries of format v2 are
/// dropped (they are derived data), `data.bin` is untouched (see `part/downgrade.rs`).
/// Returns how many parts were rewritten.
pub fn rewrite_parts_v1(data_dir: &Path) -> Result<usize> {
    crate::part::rewrite_parts_v1(&crate::vfs::RealVfs, data_dir)
}

/// Rewrite every WAL segment of a (staged, not running) data directory in format v1, for the
/// previous release (`restore --format-version 1`): the same records without commit times.
/// Each segment is replaced atomically (temp file, fsync, rename, fsync the directory).
pub fn rewrite_wal_v1(data_dir: &Path) -> Result<usize> {
    let vfs = crate::vfs::RealVfs;
    let dir = data_dir.join("wal");
    let mut n = 0;
    for (seq, path) in wal::list_segments(&vfs, &dir)? {
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        if wal::segment_version(&bytes) == Some(1) {
            continue;
        }
        let name = path.display().to_string();
        let records = if bytes.len() <= wal::HEADER_LEN {
            Vec::new()
        } else {
            decode_segment(&name, &bytes)?
        };
        let mut out = wal::segment_header_version(seq, 1).to_vec();
        for r in &records {
            wal::encode_frame_v1(r.lsn, r.kind, &r.payload, &mut out);
        }
        crate::format::write_atomic(&vfs, &path, &out)?;
        n += 1;
    }
    Ok(n)
}
