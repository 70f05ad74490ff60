//! Background merges and TTL drops.
//!
//! Merges combine a run of parts that are adjacent in LSN order inside one shard, so parts of a
//! shard never overlap in LSN and "newer part wins" stays a valid last-write-wins rule. The
//! output is written without any lock; only publishing takes `layout` (and re-checks that the
//! inputs are still live). Writers are never blocked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::Result;
use crate::format::{fsync_dir, remove_all};
use crate::memtable::SeriesMeta;
use crate::part::{PartIdentity, PartReader, PartWriter};
use crate::rows::{Rows, resolve};

use super::flush::{install_part, tmp_part_dir, write_manifest};
use super::state::*;

/// Merge when a shard has at least this many parts (background).
pub const MERGE_TRIGGER: usize = 6;
/// At most this many parts per merge.
pub const MAX_MERGE_WIDTH: usize = 8;

/// The run of adjacent parts with the smallest total size.
fn pick_window(parts: &[Arc<PartReader>], min_parts: usize) -> Option<std::ops::Range<usize>> {
    if parts.len() < min_parts.max(2) {
        return None;
    }
    let w = parts.len().min(MAX_MERGE_WIDTH);
    (0..=parts.len() - w)
        .min_by_key(|&i| {
            parts[i..i + w]
                .iter()
                .map(|p| p.meta.data_size())
                .sum::<u64>()
        })
        .map(|i| i..i + w)
}

/// Merge one window in one shard that has at least `min_parts` parts. Returns whether it did.
pub fn merge_once(inner: &Inner, min_parts: usize) -> Result<bool> {
    if inner.read_only {
        return Ok(false);
    }
    let version = read(&inner.state).version.clone();
    for (key, s) in &version.shards {
        let Some(range) = pick_window(&s.parts, min_parts) else {
            continue;
        };
        if inner.shutdown.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let inputs: Vec<Arc<PartReader>> = s.parts[range].to_vec();
        merge_parts(inner, key, &inputs)?;
        return Ok(true);
    }
    Ok(false)
}

fn merge_parts(inner: &Inner, key: &ShardKey, inputs: &[Arc<PartReader>]) -> Result<()> {
    let id = inner.next_part_id.fetch_add(1, Ordering::SeqCst);
    let ident = PartIdentity {
        part_id: id,
        group: key.group.clone(),
        segment: key.segment,
        shard: key.shard,
        min_lsn: inputs.iter().map(|p| p.meta.min_lsn).min().unwrap_or(0),
        max_lsn: inputs.iter().map(|p| p.meta.max_lsn).max().unwrap_or(0),
    };
    // Series in key order, each with its entries in the inputs.
    let mut all: BTreeMap<&SeriesMeta, Vec<(usize, usize)>> = BTreeMap::new();
    for (pi, p) in inputs.iter().enumerate() {
        for (si, e) in p.series.iter().enumerate() {
            all.entry(&e.meta).or_default().push((pi, si));
        }
    }
    let tmp = tmp_part_dir(inner, id);
    let mut w = PartWriter::create(inner.vfs(), &tmp, ident)?;
    let written = (|| {
        for (meta, entries) in &all {
            let mut sources: Vec<(Rows, Vec<u64>)> = Vec::new();
            for &(pi, si) in entries {
                let p = &inputs[pi];
                for r in p.read_series(&p.series[si], i64::MIN, i64::MAX, None)? {
                    let prio = vec![p.meta.max_lsn; r.len()];
                    sources.push((r, prio));
                }
            }
            let refs: Vec<(&Rows, &[u64])> =
                sources.iter().map(|(r, p)| (r, p.as_slice())).collect();
            let rows = if refs.len() == 1 {
                sources.swap_remove(0).0
            } else {
                resolve(&refs)
            };
            w.add_series(meta, &rows)?;
        }
        Ok::<_, crate::Error>(())
    })();
    if let Err(e) = written {
        drop(w);
        let _ = remove_all(inner.vfs(), &tmp);
        return Err(e);
    }
    let out = if w.is_empty() {
        drop(w);
        remove_all(inner.vfs(), &tmp)?;
        None
    } else {
        w.finish()?;
        Some(install_part(inner, key, &tmp)?)
    };
    publish_merge(inner, key, inputs, out)
}

fn publish_merge(
    inner: &Inner,
    key: &ShardKey,
    inputs: &[Arc<PartReader>],
    out: Option<PartReader>,
) -> Result<()> {
    let _l = lock(&inner.layout);
    let mut v = (*read(&inner.state).version).clone();
    let ids: Vec<u64> = inputs.iter().map(|p| p.meta.part_id).collect();
    let live = v.shards.get(&key.clone()).is_some_and(|s| {
        ids.iter()
            .all(|id| s.parts.iter().any(|p| p.meta.part_id == *id))
    });
    if !live {
        // TTL or a group deletion removed the inputs meanwhile: discard the output.
        if let Some(o) = out {
            remove_all(inner.vfs(), &o.dir)?;
        }
        return Ok(());
    }
    let Some(s) = v.shards.get_mut(key) else {
        return Ok(());
    };
    s.parts.retain(|p| !ids.contains(&p.meta.part_id));
    if let Some(o) = out {
        s.parts.push(Arc::new(o));
    }
    s.parts.sort_by_key(|p| p.meta.min_lsn);
    s.epoch += 1;
    write_manifest(inner, key, s)?;
    write(&inner.state).version = Arc::new(v);
    // Readers holding the old version keep their open file handles; snapshots hold hard links.
    for p in inputs {
        remove_all(inner.vfs(), &p.dir)?;
    }
    inner.stats.merges.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Drop every segment whose end is past its group's TTL.
pub fn drop_expired(inner: &Inner) -> Result<()> {
    if inner.read_only {
        return Ok(());
    }
    let now = now_ns();
    let _l = lock(&inner.layout);
    let ttls: BTreeMap<String, i64> = lock(&inner.commit)
        .catalog
        .groups
        .iter()
        .map(|(n, g)| (n.clone(), g.settings.ttl_ns))
        .collect();
    let mut v = (*read(&inner.state).version).clone();
    let doomed: Vec<(String, i64)> = v
        .shards
        .iter()
        .filter(|(k, s)| {
            ttls.get(&k.group)
                .is_some_and(|&t| expired(s.segment_end, t, now))
        })
        .map(|(k, _)| (k.group.clone(), k.segment))
        .collect();
    if doomed.is_empty() {
        return Ok(());
    }
    v.shards
        .retain(|k, _| !doomed.contains(&(k.group.clone(), k.segment)));
    write(&inner.state).version = Arc::new(v);
    let mut seen = std::collections::BTreeSet::new();
    for (group, seg) in doomed {
        if !seen.insert((group.clone(), seg)) {
            continue;
        }
        let from = inner.dir.join(group_rel(&group)).join(format!("seg-{seg}"));
        let to = inner
            .dir
            .join("tmp")
            .join(format!("drop-{group}-seg-{seg}"));
        // Renamed away in one step so the live tree never holds half a segment.
        if inner.vfs().rename(&from, &to).is_ok() {
            fsync_dir(inner.vfs(), &inner.dir.join(group_rel(&group)))?;
            remove_all(inner.vfs(), &to)?;
        }
        inner.stats.segments_dropped.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
