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
    let _f = lock(&inner.flush_lock);
    flush_locked(inner)
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

/// Caller holds `flush_lock`.
pub fn flush_locked(inner: &Inner) -> Result<()> {
    if let Some(msg) = lock(&inner.poisoned).as_ref() {
        return Err(Error::Poisoned(msg.clone()));
    }
    let (frozen, cut, prev_cut, catalog) = {
        let mut c = lock(&inner.commit);
        if read(&c.active).is_empty() {
            return Ok(());
        }
        let cut = c.last_lsn;
        let prev = c.last_freeze;
        let fresh: MemRef = Arc::new(RwLock::new(Memtable::default()));
        let old = std::mem::replace(&mut c.active, fresh.clone());
        c.last_freeze = cut;
        let mut st = write(&inner.state);
        st.frozen.push(old.clone());
        st.active = fresh;
        (old, cut, prev, c.catalog.clone())
    };
    // Parts must never hold writes whose log records are not durable.
    wait_durable(inner, cut, true)?;
    if let Some(w) = lock(&inner.wal).as_mut() {
        w.rotate().map_err(|e| fail(inner, e))?;
    }
    let built =
        build_parts(inner, &read(&frozen), &catalog, prev_cut, cut).map_err(|e| fail(inner, e))?;
    publish(inner, built, cut, &catalog).map_err(|e| fail(inner, e))?;
    {
        let mut st = write(&inner.state);
        st.frozen.retain(|m| !Arc::ptr_eq(m, &frozen));
    }
    Ok(())
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
) -> Result<Vec<BuiltPart>> {
    let version = read(&inner.state).version.clone();
    let mut out = Vec::new();
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
    Ok(out)
}

/// Write a part under `tmp/` and move it into its shard directory (not yet published).
pub fn write_part_into_shard<'a>(
    inner: &Inner,
    key: &ShardKey,
    ident: PartIdentity,
    series: impl IntoIterator<Item = (&'a SeriesMeta, Rows)>,
) -> Result<Option<PartReader>> {
    let tmp = tmp_part_dir(inner, ident.part_id);
    if write_part(inner.vfs(), &tmp, ident, series)?.is_none() {
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
    if !vfs.exists(&shard_dir) {
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
    vfs.rename(tmp, &dest).map_err(|e| Error::io(&dest, e))?;
    fsync_dir(vfs, &shard_dir)?;
    PartReader::open(vfs, &dest)
}

/// Publish new parts (one manifest per shard) and the checkpoint at `cut`.
fn publish(inner: &Inner, built: Vec<BuiltPart>, cut: u64, catalog: &CatalogState) -> Result<()> {
    let _l = lock(&inner.layout);
    let mut v = (*read(&inner.state).version).clone();
    for b in built {
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
