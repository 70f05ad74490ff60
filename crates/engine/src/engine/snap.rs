//! Snapshots: a directory under `snapshots/` that is itself a complete data directory at one
//! LSN (the cut): hard links of every published part, fresh manifests, the checkpoint, the
//! ENGINE file, and the WAL from the checkpoint up to the cut (sealed segments linked, the
//! active one copied up to the cut).
//!
//! The memtables are flushed first, so the WAL part of a snapshot is only what was written
//! between that flush and the cut. Writers are held only while the cut LSN is read under the
//! commit lock. The `layout` lock is held while linking, so no merge, flush publish or TTL drop
//! changes the part set meanwhile; afterwards the hard links keep the snapshot's files alive
//! whatever the live engine deletes.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::{create_dir_all, remove_all, write_new};
use crate::meta_files;
use crate::part::{DATA_FILE, INDEX_FILE, META_FILE};
use crate::snapshot::{Snapshot, SnapshotFile, SnapshotFileKind, WalSegmentInfo};
use crate::vfs::Vfs;
use crate::wal;

use super::durable::wait_durable;
use super::publish::{checkpoint_for, manifest_of};
use super::state::*;

/// Leaked snapshots are removed after this long.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(3600);

/// `YYYYMMDDThhmmssZ` for a time in ns since the epoch (UTC).
fn utc_stamp(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
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

pub fn take(inner: &Inner) -> Result<Snapshot> {
    if inner.read_only {
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
    let snaps = inner.dir.join("snapshots");
    let tmp = snaps.join(format!("{id}.tmp"));
    let dir = snaps.join(&id);
    // Move the memtables into parts first: the snapshot (and every backup of it) then carries
    // immutable parts that incremental backups never upload twice, and only the WAL written
    // since this flush, instead of re-copying the active WAL segment each time. Writers are
    // not held: the flush freezes the memtable and they go on into a fresh one.
    if inner.opts.snapshot_flush {
        super::flush::flush(inner)?;
    }
    let vfs = inner.vfs();
    let layout = lock(&inner.layout);
    let (cut, catalog) = {
        let c = lock(&inner.commit);
        (c.last_lsn, c.catalog.clone())
    };
    let version = read(&inner.state).version.clone();
    let ckpt_lsn = inner.checkpoint_lsn.load(Ordering::SeqCst);
    wait_durable(inner, cut, false)?;
    let res = (|| {
        create_dir_all(vfs, &tmp)?;
        let engine_bytes = vfs
            .read(&inner.dir.join(meta_files::ENGINE_FILE))
            .map_err(|e| Error::io(inner.dir.join(meta_files::ENGINE_FILE), e))?;
        write_plain(vfs, &tmp.join(meta_files::ENGINE_FILE), &engine_bytes)?;
        let ckpt = checkpoint_for(
            &catalog,
            ckpt_lsn,
            inner.next_part_id.load(Ordering::SeqCst),
        );
        write_plain(
            vfs,
            &tmp.join(meta_files::CHECKPOINT_FILE),
            &meta_files::encode_checkpoint(&ckpt)?,
        )?;
        let mut parts = Vec::new();
        for (key, s) in &version.shards {
            let rel = shard_rel(key);
            let sdir = tmp.join(&rel);
            create_dir_all(vfs, &sdir)?;
            for p in &s.parts {
                let name = crate::part::part_dir_name(p.meta.part_id);
                let pdir = sdir.join(&name);
                create_dir_all(vfs, &pdir)?;
                for f in [DATA_FILE, INDEX_FILE, META_FILE] {
                    link_or_copy(vfs, &p.dir.join(f), &pdir.join(f))?;
                }
                parts.push(p.meta.to_info(rel.join(&name)));
            }
            let m = manifest_of(inner, key, s);
            write_plain(
                vfs,
                &sdir.join(crate::manifest::file_name(m.epoch)),
                &crate::manifest::encode(&m)?,
            )?;
        }
        let wal_infos = copy_wal(inner, &tmp, ckpt_lsn, cut)?;
        for d in ["wal", "data"] {
            create_dir_all(vfs, &tmp.join(d))?;
        }
        vfs.rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))?;
        Ok((parts, wal_infos))
    })();
    drop(layout);
    let (parts, wal_infos) = match res {
        Ok(x) => x,
        Err(e) => {
            let _ = remove_all(vfs, &tmp);
            return Err(e);
        }
    };
    lock(&inner.snapshots).insert(
        id.clone(),
        LiveSnapshot {
            dir: dir.clone(),
            created: Instant::now(),
        },
    );
    let files = list_files(vfs, &dir, &parts)?;
    Ok(Snapshot {
        id,
        lsn: cut,
        taken_at,
        node_id: inner.node_id.clone(),
        format_version: crate::FORMAT_VERSION,
        dir,
        catalog: catalog.to_public(),
        parts,
        wal: wal_infos,
        files,
    })
}

/// Link (sealed, wholly below the cut) or copy up to the cut every WAL segment holding records
/// after the checkpoint.
fn copy_wal(inner: &Inner, tmp: &Path, ckpt: u64, cut: u64) -> Result<Vec<WalSegmentInfo>> {
    let vfs = inner.vfs();
    let wdir = tmp.join("wal");
    create_dir_all(vfs, &wdir)?;
    let (segments, active) = {
        let w = lock(&inner.wal);
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
        let name = wal::segment_name(s.seq);
        let dest = wdir.join(&name);
        let rel = PathBuf::from("wal").join(&name);
        if last <= cut && s.path != active {
            link_or_copy(vfs, &s.path, &dest)?;
            out.push(WalSegmentInfo {
                rel_path: rel,
                first_lsn: first,
                last_lsn: last,
                size: s.size,
            });
            continue;
        }
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
        out.push(WalSegmentInfo {
            rel_path: rel,
            first_lsn: first,
            last_lsn: last,
            size: end as u64,
        });
    }
    Ok(out)
}

/// Write a new snapshot file without fsync. Snapshots never need to survive a crash: open
/// removes `snapshots/` wholesale, and a backup reads the snapshot while it is live (from the
/// page cache). Skipping the thousands of file and directory fsyncs of a large part set is
/// most of what makes a nothing-new backup cheap. (Hard-linked parts are durable already.)
fn write_plain(vfs: &dyn Vfs, path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = vfs.create_new(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))
}

/// Every file of the snapshot with size and BLAKE3; part data files take their digest from the
/// part metadata instead of being read.
fn list_files(
    vfs: &dyn Vfs,
    dir: &Path,
    parts: &[crate::snapshot::PartInfo],
) -> Result<Vec<SnapshotFile>> {
    let mut known = std::collections::HashMap::new();
    for p in parts {
        for f in &p.files {
            known.insert(p.rel_dir.join(&f.name), (f.size, f.digest));
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        for ent in vfs.read_dir(&abs).map_err(|e| Error::io(&abs, e))? {
            let r = rel.join(&ent.name);
            let path = abs.join(&ent.name);
            if ent.is_dir {
                stack.push(r);
                continue;
            }
            if let Some(&(size, digest)) = known.get(&r) {
                out.push(SnapshotFile {
                    rel_path: r,
                    size,
                    digest,
                    kind: SnapshotFileKind::Part,
                });
                continue;
            }
            let bytes = vfs.read(&path).map_err(|e| Error::io(&path, e))?;
            let kind = if r.starts_with("wal") {
                SnapshotFileKind::Wal
            } else {
                SnapshotFileKind::Meta
            };
            out.push(SnapshotFile {
                rel_path: r,
                size: bytes.len() as u64,
                digest: *blake3::hash(&bytes).as_bytes(),
                kind,
            });
        }
    }
    out.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(out)
}

pub fn release(inner: &Inner, id: &str) -> Result<()> {
    let s = lock(&inner.snapshots)
        .remove(id)
        .ok_or_else(|| Error::SnapshotNotFound(id.to_string()))?;
    // Unlinking thousands of hard links takes long and nobody needs to wait for it: move the
    // snapshot into `tmp/` (one rename; open removes `tmp/` wholesale) and delete it there on
    // a short-lived thread.
    let trash = inner.dir.join("tmp").join(format!("released-{id}"));
    if inner.vfs().rename(&s.dir, &trash).is_err() {
        return remove_all(inner.vfs(), &s.dir);
    }
    let vfs = inner.opts.vfs.clone();
    let gone = trash.clone();
    let spawned = std::thread::Builder::new()
        .name("strata-snap-rm".into())
        .spawn(move || {
            if let Err(e) = remove_all(&*vfs, &gone) {
                tracing::warn!(error = %e, "removing a released snapshot failed");
            }
        });
    match spawned {
        Ok(_) => Ok(()),
        Err(_) => remove_all(inner.vfs(), &trash),
    }
}

/// Remove snapshots nobody released within [`SNAPSHOT_TTL`].
pub fn expire(inner: &Inner) {
    let old: Vec<String> = lock(&inner.snapshots)
        .iter()
        .filter(|(_, s)| s.created.elapsed() >= SNAPSHOT_TTL)
        .map(|(id, _)| id.clone())
        .collect();
    for id in old {
        tracing::warn!(snapshot = %id, "snapshot not released within an hour; removing it");
        let _ = release(inner, &id);
    }
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
