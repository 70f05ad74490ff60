//! Flush: freeze the active memtable at an LSN cut, write one part per (group, segment, shard)
//! it touches, publish the new manifests, then the checkpoint, then trim the WAL.
//!
//! Crash at any step: parts written but unpublished are removed at open; manifests published
//! without the checkpoint are fine (replay skips rows at or below each shard's `flushed_lsn`);
//! WAL segments are removed only after the checkpoint that covers them.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::catalog::CatalogState;
use crate::error::{Error, Result};
use crate::format::{create_dir_all, fsync_dir};
use crate::manifest::{self, Manifest};
use crate::memtable::{Memtable, SeriesMeta};
use crate::meta_files;
use crate::part::{PartIdentity, PartReader, write_part};
use crate::rows::Rows;

use super::commit::wait_durable;
use super::state::*;

pub fn flush(inner: &Inner) -> Result<()> {
    if inner.read_only {
        return Ok(());
    }
    let mut retry = lock(&inner.flush_lock);
    flush_locked(inner, &mut retry)
}

/// A memtable frozen at an LSN cut, on its way to parts.
pub struct Frozen {
    mem: MemRef,
    /// Rows of `mem` are in `(prev_cut, cut]`.
    prev_cut: u64,
    cut: u64,
    /// The catalog as of the cut (the checkpoint records it).
    catalog: CatalogState,
}

impl Frozen {
    /// Forget a deleted group's rows (its deletion is in the WAL after `cut`).
    pub fn remove_group(&self, group: &str) {
        write(&self.mem).remove_group(group);
    }
}

/// Record a failed flush: the frozen memtable stays readable, but nothing more is accepted
/// until reopen (a later checkpoint would otherwise claim rows that never reached a part).
fn fail(inner: &Inner, e: Error) -> Error {
    let mut p = lock(&inner.poisoned);
    if p.is_none() {
        tracing::error!(error = %e, "flush failed; refusing writes until reopened");
        *p = Some(format!("flush failed: {e}"));
    }
    e
}

/// Caller holds `flush_lock`; `retry` is what it guards.
///
/// A flush that failed because no file descriptor was free (`EMFILE`, `ENFILE`: a new part,
/// manifest or WAL segment could not be opened) wrote nothing that matters and lost nothing:
/// its memtable stays frozen and readable, its rows stay in the WAL, and the next flush writes
/// it first with its own cut, so the checkpoint never passes a row that is not in a part.
/// Writes go on meanwhile. Any other failure poisons the engine as before.
pub fn flush_locked(inner: &Inner, retry: &mut Option<Frozen>) -> Result<()> {
    if let Some(msg) = lock(&inner.poisoned).as_ref() {
        return Err(Error::Poisoned(msg.clone()));
    }
    if let Some(f) = retry.take() {
        write_frozen(inner, f).map_err(|(f, e)| {
            *retry = Some(f);
            e
        })?;
        tracing::info!("flush succeeded after running out of file descriptors");
    }
    let Some(f) = freeze(inner) else {
        return Ok(());
    };
    // Parts must never hold writes whose log records are not durable.
    wait_durable(inner, f.cut, true)?;
    write_frozen(inner, f).map_err(|(f, e)| {
        *retry = Some(f);
        e
    })
}

/// Swap in a fresh active memtable; `None` when there is nothing to flush.
fn freeze(inner: &Inner) -> Option<Frozen> {
    let mut c = lock(&inner.commit);
    if read(&c.active).is_empty() {
        return None;
    }
    let cut = c.last_lsn;
    let prev_cut = c.last_freeze;
    let fresh: MemRef = Arc::new(RwLock::new(Memtable::default()));
    let old = std::mem::replace(&mut c.active, fresh.clone());
    c.last_freeze = cut;
    let mut st = write(&inner.state);
    st.frozen.push(old.clone());
    st.active = fresh;
    Some(Frozen {
        mem: old,
        prev_cut,
        cut,
        catalog: c.catalog.clone(),
    })
}

/// Write a frozen memtable to parts, publish them and the checkpoint. On descriptor
/// exhaustion, hands the memtable back for a retry; on any other failure, poisons.
fn write_frozen(inner: &Inner, f: Frozen) -> Result<(), (Frozen, Error)> {
    let mut built = Vec::new();
    let res = (|| {
        if let Some(w) = lock(&inner.wal).as_mut() {
            w.rotate()?;
        }
        build_parts(
            inner,
            &read(&f.mem),
            &f.catalog,
            f.prev_cut,
            f.cut,
            &mut built,
        )?;
        publish(inner, &mut built, f.cut, &f.catalog)
    })();
    match res {
        Ok(()) => {
            let mut st = write(&inner.state);
            st.frozen.retain(|m| !Arc::ptr_eq(m, &f.mem));
            Ok(())
        }
        Err(e) if e.is_descriptor_exhaustion() => {
            // Parts no manifest lists; what is left behind anyway is removed at open.
            for b in built {
                let _ = crate::format::remove_all(inner.vfs(), &b.part.dir);
            }
            tracing::warn!(error = %e, cut = f.cut, "flush postponed: out of file descriptors; writes go on, the flush is retried");
            Err((f, e))
        }
        Err(e) => {
            let e = fail(inner, e);
            Err((f, e))
        }
    }
}

pub struct BuiltPart {
    pub key: ShardKey,
    pub segment_end: i64,
    pub shards: u32,
    pub part: PartReader,
}

type Buckets<'a> = BTreeMap<(i64, u32), Vec<(&'a SeriesMeta, Rows)>>;

fn build_parts(
    inner: &Inner,
    mem: &Memtable,
    catalog: &CatalogState,
    prev_cut: u64,
    cut: u64,
    out: &mut Vec<BuiltPart>,
) -> Result<()> {
    let version = read(&inner.state).version.clone();
    let mut groups: Vec<&String> = mem.groups.keys().collect();
    groups.sort();
    for group in groups {
        let settings = catalog.settings(group);
        let iv = settings.segment_interval_ns;
        let mut buckets: Buckets<'_> = BTreeMap::new();
        for ms in mem.groups[group].values() {
            for s in ms.values() {
                let rows = s.resolved();
                let sid = s.meta.sid();
                let mut a = 0;
                while a < rows.len() {
                    let seg = segment_of(rows.ts[a], iv);
                    let end = seg.saturating_add(iv);
                    let b = a + rows.ts[a..].partition_point(|&t| t < end);
                    let shards = version
                        .segment_shards(group, seg)
                        .unwrap_or(settings.shards);
                    let part = if a == 0 && b == rows.len() {
                        rows.clone()
                    } else {
                        rows.slice(a, b)
                    };
                    buckets
                        .entry((seg, shard_of(sid, shards)))
                        .or_default()
                        .push((&s.meta, part));
                    a = b;
                }
            }
        }
        for ((seg, shard), mut series) in buckets {
            series.sort_by(|a, b| a.0.cmp(b.0));
            let key = ShardKey {
                group: group.clone(),
                segment: seg,
                shard,
            };
            let flushed = version.shards.get(&key).map_or(0, |s| s.flushed_lsn);
            let id = inner
                .next_part_id
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let ident = PartIdentity {
                part_id: id,
                group: group.clone(),
                segment: seg,
                shard,
                min_lsn: prev_cut.max(flushed) + 1,
                max_lsn: cut,
            };
            let shards = version
                .segment_shards(group, seg)
                .unwrap_or(settings.shards);
            if let Some(part) = write_part_into_shard(inner, &key, ident, series)? {
                out.push(BuiltPart {
                    key,
                    segment_end: seg.saturating_add(iv),
                    shards,
                    part,
                });
            }
        }
    }
    Ok(())
}

/// Write a part under `tmp/` and move it into its shard directory (not yet published).
pub fn write_part_into_shard<'a>(
    inner: &Inner,
    key: &ShardKey,
    ident: PartIdentity,
    series: impl IntoIterator<Item = (&'a SeriesMeta, Rows)>,
) -> Result<Option<PartReader>> {
    let tmp = tmp_part_dir(inner, ident.part_id);
    let written = match write_part(inner.vfs(), &tmp, ident, series) {
        Ok(w) => w,
        Err(e) => {
            // Best effort: open removes whatever is left in tmp/ anyway.
            let _ = crate::format::remove_all(inner.vfs(), &tmp);
            return Err(e);
        }
    };
    if written.is_none() {
        return Ok(None);
    }
    install_part(inner, key, &tmp).map(Some)
}

pub fn tmp_part_dir(inner: &Inner, id: u64) -> std::path::PathBuf {
    inner
        .dir
        .join("tmp")
        .join(format!("part-{}", crate::part::part_dir_name(id)))
}

/// Move a finished part from `tmp/` into its shard directory and open it.
pub fn install_part(inner: &Inner, key: &ShardKey, tmp: &std::path::Path) -> Result<PartReader> {
    let name = tmp
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("part-"))
        .unwrap_or_default()
        .to_string();
    let shard_dir = inner.dir.join(shard_rel(key));
    let vfs = inner.vfs();
    // A shard of the published version has a durable directory (its manifest is in it). Any
    // other may have been created by an attempt that failed before making it durable (out of
    // file descriptors, say): existing is not enough.
    let published = read(&inner.state).version.shards.contains_key(key);
    if !published {
        create_dir_all(vfs, &shard_dir)?;
        // Make the new directory chain durable.
        let mut d = shard_dir.as_path();
        while let Some(parent) = d.parent() {
            fsync_dir(vfs, parent)?;
            if parent == inner.dir {
                break;
            }
            d = parent;
        }
    }
    let dest = shard_dir.join(&name);
    if let Err(e) = vfs.rename(tmp, &dest) {
        let _ = crate::format::remove_all(vfs, tmp);
        return Err(Error::io(&dest, e));
    }
    // No manifest lists the part yet, so removing it on failure is safe.
    let opened = fsync_dir(vfs, &shard_dir).and_then(|()| PartReader::open(vfs, &dest));
    if opened.is_err() {
        let _ = crate::format::remove_all(vfs, &dest);
    }
    opened
}

/// Publish new parts (one manifest per shard) and the checkpoint at `cut`.
///
/// Parts still in `built` when this fails are in no manifest (the caller may remove them); a
/// part whose manifest write failed may be listed by that manifest on disk, so it is taken out
/// of `built` first. A retry rewrites every manifest from the in-memory version (same epochs).
fn publish(
    inner: &Inner,
    built: &mut Vec<BuiltPart>,
    cut: u64,
    catalog: &CatalogState,
) -> Result<()> {
    let _l = lock(&inner.layout);
    let mut v = (*read(&inner.state).version).clone();
    built.reverse();
    while let Some(b) = built.pop() {
        if !catalog.groups.contains_key(&b.key.group) {
            crate::format::remove_all(inner.vfs(), &b.part.dir)?;
            continue;
        }
        let s = v.shards.entry(b.key.clone()).or_insert_with(|| ShardState {
            epoch: 0,
            flushed_lsn: 0,
            segment_end: b.segment_end,
            shards: b.shards,
            parts: Vec::new(),
        });
        s.parts.push(Arc::new(b.part));
        s.parts.sort_by_key(|p| p.meta.min_lsn);
        s.flushed_lsn = s.flushed_lsn.max(cut);
        s.epoch += 1;
        write_manifest(inner, &b.key, s)?;
    }
    meta_files::write_checkpoint(
        inner.vfs(),
        &inner.dir,
        &super::open::checkpoint_for(
            catalog,
            cut,
            inner.next_part_id.load(std::sync::atomic::Ordering::SeqCst),
        ),
    )?;
    inner
        .checkpoint_lsn
        .store(cut, std::sync::atomic::Ordering::SeqCst);
    write(&inner.state).version = Arc::new(v);
    if let Some(w) = lock(&inner.wal).as_mut() {
        w.delete_through(cut)?;
    }
    Ok(())
}

pub fn manifest_of(inner: &Inner, key: &ShardKey, s: &ShardState) -> Manifest {
    Manifest {
        epoch: s.epoch,
        group: key.group.clone(),
        segment_start: key.segment,
        segment_end: s.segment_end,
        shard: key.shard,
        shards: s.shards,
        flushed_lsn: s.flushed_lsn,
        next_part_id: inner.next_part_id.load(std::sync::atomic::Ordering::SeqCst),
        parts: s.parts.iter().map(|p| p.meta.part_id).collect(),
    }
}

pub fn write_manifest(inner: &Inner, key: &ShardKey, s: &ShardState) -> Result<()> {
    manifest::publish(
        inner.vfs(),
        &inner.dir.join(shard_rel(key)),
        &manifest_of(inner, key, s),
    )
}
