//! Snapshots that pin instead of copying. A snapshot is the published part set and the WAL
//! cut at one LSN, held by the engine: its parts are pinned (a merge, TTL drop or group
//! deletion that unpublishes a pinned part defers deleting its directory until the last
//! release), its small metadata files (ENGINE, CHECKPOINT, one manifest per shard) are held
//! in memory, and only the WAL between the last checkpoint and the cut is copied, under
//! `snapshots/<id>/wal/`. Nothing is hard-linked or created per part, so taking a snapshot
//! costs the same whatever the part count.
//!
//! The memtables are flushed first, so the WAL part of a snapshot is only what was written
//! between that flush and the cut. Writers are held only while the cut LSN is read under the
//! commit lock. The `layout` lock is held from reading the part set until the pin is
//! registered, so no merge, flush publish or TTL drop changes the part set meanwhile.
//!
//! The pin set is persisted in `snapshots/PINS` (see `pins.rs`) before `take` returns, so a
//! reader outside the process (`strata backup --server`) keeps its files across a `kill -9`
//! and restart of the server. What a crash leaves, step by step:
//! 1. during the flush: as any flush (the snapshot does not exist yet);
//! 2. while copying the WAL cut into `snapshots/<id>/`: a directory no pin lists; open
//!    removes it;
//! 3. after `PINS` names the snapshot: open keeps the snapshot's parts (deferring their delete
//!    if a merge had unpublished them) and its WAL copy until the pin is released or expires;
//! 4. during release, after `PINS` dropped it: its deferred parts and WAL copy are garbage
//!    that open removes (they are unpublished and unpinned).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::{create_dir_all, fsync_dir, remove_all, write_new};
use crate::meta_files;
use crate::part::META_FILE;
use crate::snapshot::{FileSource, Snapshot, SnapshotFile, SnapshotFileKind, WalSegmentInfo};
use crate::vfs::Vfs;
use crate::wal;

use super::durable::wait_durable;
use super::pins::{Pin, SNAPSHOTS_DIR, remove_unpinned};
use super::publish::{checkpoint_for, manifest_of};
use super::state::*;

/// Snapshots nobody released are dropped this long after they were taken.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(3600);

/// `YYYYMMDDThhmmssZ` for a time in ns since the epoch (UTC).
fn utc_stamp(ns: i64) -> String {
    crate::datadir::names::utc_stamp(ns.div_euclid(1_000_000_000))
}

fn link_or_copy(vfs: &dyn Vfs, from: &Path, to: &Path) -> Result<()> {
    match vfs.hard_link(from, to) {
        Ok(()) => Ok(()),
        // Another filesystem (EXDEV) or no link support: fall back to a copy.
        Err(_) => {
            let bytes = vfs.read(from).map_err(|e| Error::io(from, e))?;
            write_new(vfs, to, &bytes)
        }
    }
}

fn inline(rel_path: PathBuf, bytes: Vec<u8>) -> SnapshotFile {
    SnapshotFile {
        rel_path,
        size: bytes.len() as u64,
        digest: *blake3::hash(&bytes).as_bytes(),
        kind: SnapshotFileKind::Meta,
        source: FileSource::Inline(bytes),
    }
}

/// The data directory as an absolute path: sources are read by other processes too.
fn absolute_dir(inner: &Inner) -> Result<PathBuf> {
    std::path::absolute(&inner.env.dir).map_err(|e| Error::io(&inner.env.dir, e))
}

pub fn take(inner: &Inner) -> Result<Snapshot> {
    if inner.env.read_only {
        return Err(Error::InvalidInput(
            "cannot snapshot a read-only engine".into(),
        ));
    }
    let taken_at = now_ns();
    let id = format!(
        "{}-{}",
        utc_stamp(taken_at),
        hex::encode(rand::random::<[u8; 4]>())
    );
    // Move the memtables into parts first: the snapshot (and every backup of it) then carries
    // immutable parts that incremental backups never upload twice, and only the WAL written
    // since this flush, instead of re-copying the active WAL segment each time. Writers are
    // not held: the flush freezes the memtable and they go on into a fresh one.
    if inner.env.opts.snapshot_flush {
        super::flush::flush(inner)?;
    }
    let vfs = inner.vfs();
    let abs = absolute_dir(inner)?;
    let layout = lock(&inner.published.layout);
    // The recorded time is taken with the cut: no batch in the snapshot has a later commit
    // time (point-in-time recovery relies on it, docs/format/wal.md).
    let (cut, catalog, taken_at) = {
        let c = lock(&inner.writes.commit);
        (
            c.last_lsn,
            c.catalog.clone(),
            now_ns().max(c.last_commit_ns),
        )
    };
    let version = inner.published.version();
    let ckpt_lsn = inner.published.checkpoint_lsn.load(Ordering::SeqCst);
    wait_durable(inner, cut, false)?;

    let mut files = Vec::new();
    let engine_path = inner.env.dir.join(meta_files::ENGINE_FILE);
    let engine_bytes = vfs
        .read(&engine_path)
        .map_err(|e| Error::io(&engine_path, e))?;
    files.push(inline(meta_files::ENGINE_FILE.into(), engine_bytes));
    let ckpt = checkpoint_for(
        &catalog,
        ckpt_lsn,
        inner.published.next_part_id.load(Ordering::SeqCst),
    );
    files.push(inline(
        meta_files::CHECKPOINT_FILE.into(),
        meta_files::encode_checkpoint(&ckpt)?,
    ));
    let mut parts = Vec::new();
    let mut pinned = Vec::new();
    for (key, s) in &version.shards {
        let rel = shard_rel(key);
        for p in &s.parts {
            let prel = rel.join(crate::part::part_dir_name(p.meta.part_id));
            let src = abs.join(&prel);
            let info = p.meta.to_info(prel.clone());
            for f in &info.files {
                files.push(SnapshotFile {
                    rel_path: prel.join(&f.name),
                    size: f.size,
                    digest: f.digest,
                    kind: SnapshotFileKind::Part,
                    source: FileSource::Path(src.join(&f.name)),
                });
            }
            // `meta.bin` is small metadata, listed as such (its digest was taken at open).
            files.push(SnapshotFile {
                rel_path: prel.join(META_FILE),
                size: p.meta_file.size,
                digest: p.meta_file.digest,
                kind: SnapshotFileKind::Meta,
                source: FileSource::Path(src.join(META_FILE)),
            });
            parts.push(info);
            pinned.push(prel);
        }
        let m = manifest_of(inner, key, s);
        files.push(inline(
            rel.join(crate::manifest::file_name(m.epoch)),
            crate::manifest::encode(&m)?,
        ));
    }
    let snap_dir = inner.env.dir.join(SNAPSHOTS_DIR).join(&id);
    let wal = match copy_wal(
        inner,
        &snap_dir,
        &abs.join(SNAPSHOTS_DIR).join(&id),
        ckpt_lsn,
        cut,
    ) {
        Ok(w) => w,
        Err(e) => {
            let _ = remove_all(vfs, &snap_dir);
            return Err(e);
        }
    };
    for (info, file) in &wal {
        files.push(file.clone());
        debug_assert_eq!(info.rel_path, file.rel_path);
    }
    let expires_at = taken_at.saturating_add(SNAPSHOT_TTL.as_nanos() as i64);
    let pin = Pin {
        id: id.clone(),
        lsn: cut,
        taken_at,
        expires_at,
        parts: pinned,
        wal_copy: !wal.is_empty(),
    };
    {
        let mut pins = lock(&inner.pins);
        pins.add(pin);
        if let Err(e) = pins.save(vfs, &inner.env.dir) {
            pins.remove(&id);
            drop(pins);
            let _ = remove_all(vfs, &snap_dir);
            return Err(e);
        }
    }
    drop(layout);
    files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(Snapshot {
        id,
        lsn: cut,
        taken_at,
        node_id: inner.env.node_id.clone(),
        format_version: crate::FORMAT_VERSION,
        expires_at,
        catalog: catalog.to_public(),
        parts,
        wal: wal.into_iter().map(|(w, _)| w).collect(),
        files,
    })
}

/// Link (sealed, wholly below the cut) or copy up to the cut every WAL segment holding records
/// after the checkpoint, into `dir/wal/` (created only when there is any).
fn copy_wal(
    inner: &Inner,
    dir: &Path,
    abs_dir: &Path,
    ckpt: u64,
    cut: u64,
) -> Result<Vec<(WalSegmentInfo, SnapshotFile)>> {
    let vfs = inner.vfs();
    let wdir = dir.join("wal");
    let (segments, active) = {
        let w = lock(&inner.writes.wal);
        let Some(w) = w.as_ref() else {
            return Ok(Vec::new());
        };
        (w.segments(), w.active_path().to_path_buf())
    };
    let mut out = Vec::new();
    for s in segments {
        let Some((first, last)) = s.lsns else {
            continue;
        };
        if last <= ckpt || first > cut {
            continue;
        }
        if out.is_empty() {
            create_dir_all(vfs, &wdir)?;
        }
        let name = wal::segment_name(s.seq);
        let dest = wdir.join(&name);
        let rel = PathBuf::from("wal").join(&name);
        let (info, bytes_digest) = if last <= cut && s.path != active {
            link_or_copy(vfs, &s.path, &dest)?;
            let bytes = vfs.read(&dest).map_err(|e| Error::io(&dest, e))?;
            let info = WalSegmentInfo {
                rel_path: rel.clone(),
                first_lsn: first,
                last_lsn: last,
                size: bytes.len() as u64,
            };
            (info, *blake3::hash(&bytes).as_bytes())
        } else {
            // The active segment grows while we read it: keep whole frames up to the cut only.
            let bytes = vfs.read(&s.path).map_err(|e| Error::io(&s.path, e))?;
            let mut end = wal::HEADER_LEN;
            let mut lsns: Option<(u64, u64)> = None;
            wal::scan_segment(&s.path, &bytes, true, 0, &mut |f| {
                if f.lsn <= cut {
                    end = f.end;
                    lsns = Some((lsns.map_or(f.lsn, |l| l.0), f.lsn));
                }
                Ok(())
            })?;
            let Some((first, last)) = lsns else {
                continue;
            };
            write_plain(vfs, &dest, &bytes[..end])?;
            let info = WalSegmentInfo {
                rel_path: rel.clone(),
                first_lsn: first,
                last_lsn: last,
                size: end as u64,
            };
            (info, *blake3::hash(&bytes[..end]).as_bytes())
        };
        let file = SnapshotFile {
            rel_path: rel,
            size: info.size,
            digest: bytes_digest,
            kind: SnapshotFileKind::Wal,
            source: FileSource::Path(abs_dir.join("wal").join(&name)),
        };
        out.push((info, file));
    }
    Ok(out)
}

/// Write a new snapshot file without fsync: a snapshot's WAL copy only serves readers that a
/// power cut stops too (see `pins.rs`).
fn write_plain(vfs: &dyn Vfs, path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = vfs.create_new(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))
}

pub fn release(inner: &Inner, id: &str) -> Result<()> {
    let vfs = inner.vfs();
    let (pin, free) = {
        let mut pins = lock(&inner.pins);
        let (pin, free) = pins
            .remove(id)
            .ok_or_else(|| Error::SnapshotNotFound(id.to_string()))?;
        // The pin file first: a crash after it leaves only unpinned garbage, removed at open.
        pins.save(vfs, &inner.env.dir)?;
        (pin, free)
    };
    for d in free {
        remove_all(vfs, &inner.env.dir.join(d))?;
    }
    if pin.wal_copy {
        remove_all(vfs, &inner.env.dir.join(SNAPSHOTS_DIR).join(&pin.id))?;
    }
    Ok(())
}

/// Release snapshots nobody released before their expiry.
pub fn expire(inner: &Inner) {
    let old = lock(&inner.pins).expired(now_ns());
    for id in old {
        tracing::warn!(snapshot = %id, "snapshot not released before it expired; releasing it");
        let _ = release(inner, &id);
    }
}

/// A part directory (absolute, under the data directory) left the published set: delete it
/// now, or when the last snapshot pinning it is released.
pub fn retire_part(inner: &Inner, dir: &Path) -> Result<()> {
    let now = match dir.strip_prefix(&inner.env.dir) {
        Ok(rel) => lock(&inner.pins).unpublish(rel),
        Err(_) => true,
    };
    if now {
        remove_all(inner.vfs(), dir)?;
    }
    Ok(())
}

/// A whole tree (a group or a segment directory) left the published set. Without pins in it,
/// it is renamed to `tmp/<trash>` (so a crash never leaves half of it) and removed. With pins
/// in it, everything but the pinned part directories is removed now, manifests included so
/// that nothing republishes them, and the pinned ones wait for their release.
pub fn retire_tree(inner: &Inner, from: &Path, trash: &str) -> Result<()> {
    let vfs = inner.vfs();
    if !vfs.exists(from) {
        return Ok(());
    }
    let pinned = lock(&inner.pins).pinned_dirs();
    let rel = from.strip_prefix(&inner.env.dir).unwrap_or(from);
    let parent = from.parent().map(Path::to_path_buf);
    if pinned.iter().any(|p| p.starts_with(rel)) {
        let kept = remove_unpinned(vfs, &inner.env.dir, from, &pinned)?;
        let free: Vec<PathBuf> = {
            let mut pins = lock(&inner.pins);
            kept.into_iter().filter(|k| pins.unpublish(k)).collect()
        };
        // Released meanwhile: nobody pins these any more.
        for d in free {
            remove_all(vfs, &inner.env.dir.join(d))?;
        }
    } else {
        let to = inner.env.dir.join("tmp").join(trash);
        vfs.rename(from, &to).map_err(|e| Error::io(from, e))?;
        if let Some(p) = &parent {
            fsync_dir(vfs, p)?;
        }
        remove_all(vfs, &to)?;
        return Ok(());
    }
    if let Some(p) = &parent {
        fsync_dir(vfs, p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_stamp_formats_known_dates() {
        assert_eq!(super::utc_stamp(0), "19700101T000000Z");
        assert_eq!(
            super::utc_stamp(1_700_000_000_000_000_000),
            "20231114T221320Z"
        );
    }
}
