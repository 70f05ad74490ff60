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
use crate::format::remove_all;
use crate::memtable::SeriesMeta;
use crate::part::{PartIdentity, PartReader, PartWriter};
use crate::rows::{Rows, resolve};

use super::publish::{install_part, tmp_part_dir, write_manifest};
use super::route::expired;
use super::state::*;

/// Background merges are size-tiered: a run of adjacent parts is merged only when its total is
/// at least this many times its largest part, so a small new part is never folded into a much
/// larger one. Each byte is then rewritten about log₃(shard size / flush size) times, and an
/// incremental backup after a little new data uploads about that little data: the big parts
/// keep their names and their objects are reused. (Merging every part of a shard once it had 6
/// rewrote the big parts after every snapshot flush; +1 % of data cost 93 % of a full backup.)
pub const MERGE_MULTIPLIER: u64 = 3;
/// At most this many parts per merge.
pub const MAX_MERGE_WIDTH: usize = 16;
/// A shard with more parts than this merges its cheapest window whatever the sizes, so reads
/// never have to open an unbounded number of parts (sizes that keep the tiers from forming, e.g.
/// alternating large and tiny parts, cannot pile up).
pub const MAX_PARTS_PER_SHARD: usize = 32;

/// How `merge_once` chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The background merger: size-tiered (see [`MERGE_MULTIPLIER`]).
    Tiered,
    /// `Engine::compact`: merge until each shard has one part.
    Full,
}

/// The window of adjacent parts to merge under `policy`, given the parts' sizes in LSN order.
pub fn pick_window(sizes: &[u64], policy: Policy) -> Option<std::ops::Range<usize>> {
    let n = sizes.len();
    if n < 2 {
        return None;
    }
    let cheapest = |w: usize| {
        (0..=n - w)
            .min_by_key(|&i| sizes[i..i + w].iter().sum::<u64>())
            .map(|i| i..i + w)
    };
    if policy == Policy::Full {
        return cheapest(n.min(MAX_MERGE_WIDTH));
    }
    // Best ratio (total / largest: the fewest rewrites per byte), then the most parts, then the
    // smallest total. Sizes count at least 1 so empty parts still tier.
    // (total, largest, range) of the best window so far.
    let mut best: Option<(u64, u64, std::ops::Range<usize>)> = None;
    for i in 0..n {
        let (mut sum, mut max) = (0u64, 0u64);
        for (j, size) in sizes
            .iter()
            .enumerate()
            .take(n.min(i + MAX_MERGE_WIDTH))
            .skip(i)
        {
            let sz = (*size).max(1);
            sum = sum.saturating_add(sz);
            max = max.max(sz);
            let width = j + 1 - i;
            if width < 2 || sum < max.saturating_mul(MERGE_MULTIPLIER) {
                continue;
            }
            // Compare sum/max ratios exactly: a/b > c/d  ⇔  a·d > c·b.
            let better = match &best {
                None => true,
                Some((bsum, bmax, br)) => {
                    let l = u128::from(sum) * u128::from(*bmax);
                    let r = u128::from(*bsum) * u128::from(max);
                    l > r || (l == r && (width > br.len() || (width == br.len() && sum < *bsum)))
                }
            };
            if better {
                best = Some((sum, max, i..j + 1));
            }
        }
    }
    match best {
        Some((_, _, range)) => Some(range),
        None if n > MAX_PARTS_PER_SHARD => {
            cheapest((n - MAX_PARTS_PER_SHARD + 1).clamp(2, MAX_MERGE_WIDTH))
        }
        None => None,
    }
}

/// Merge one window in one shard, chosen under `policy`. Returns whether it did.
pub fn merge_once(inner: &Inner, policy: Policy) -> Result<bool> {
    if inner.env.read_only {
        return Ok(false);
    }
    let version = inner.published.version();
    for (key, s) in &version.shards {
        let sizes: Vec<u64> = s.parts.iter().map(|p| p.meta.data_size()).collect();
        let Some(range) = pick_window(&sizes, policy) else {
            continue;
        };
        if inner.background.shutdown.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let inputs: Vec<Arc<PartReader>> = s.parts[range].to_vec();
        merge_parts(inner, key, &inputs)?;
        return Ok(true);
    }
    Ok(false)
}

fn merge_parts(inner: &Inner, key: &ShardKey, inputs: &[Arc<PartReader>]) -> Result<()> {
    let id = inner.published.next_part_id.fetch_add(1, Ordering::SeqCst);
    let ident = PartIdentity {
        part_id: id,
        group: key.group.clone(),
        segment: key.segment,
        shard: key.shard,
        min_lsn: inputs.iter().map(|p| p.meta.min_lsn).min().unwrap_or(0),
        max_lsn: inputs.iter().map(|p| p.meta.max_lsn).max().unwrap_or(0),
    };
    // Series in key order, each with its entries in the inputs.
    let indexes = inputs
        .iter()
        .map(|p| p.index_once())
        .collect::<Result<Vec<_>>>()?;
    let mut all: BTreeMap<&SeriesMeta, Vec<(usize, usize)>> = BTreeMap::new();
    for (pi, idx) in indexes.iter().enumerate() {
        for (si, e) in idx.series.iter().enumerate() {
            all.entry(&e.meta).or_default().push((pi, si));
        }
    }
    let tmp = tmp_part_dir(inner, id);
    // Out of file descriptors (or any failure) before publishing: the output is removed and
    // the inputs stay as they are; the merge loop retries after a back-off.
    let mut w = PartWriter::create(inner.vfs(), &tmp, ident).inspect_err(|_| {
        let _ = remove_all(inner.vfs(), &tmp);
    })?;
    let written = (|| {
        for (meta, entries) in &all {
            let mut sources: Vec<(Rows, Vec<u64>)> = Vec::new();
            for &(pi, si) in entries {
                let p = &inputs[pi];
                for r in p.read_series(&indexes[pi].series[si], i64::MIN, i64::MAX, None)? {
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
        w.finish().inspect_err(|_| {
            let _ = remove_all(inner.vfs(), &tmp);
        })?;
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
    let _l = lock(&inner.published.layout);
    let mut v = (*read(&inner.published.state).version).clone();
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
    write(&inner.published.state).version = Arc::new(v);
    // Readers holding the old version keep their open file handles; a snapshot's pin defers
    // the delete until its release.
    for p in inputs {
        super::snap::retire_part(inner, &p.dir)?;
    }
    inner.stats.merges.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Drop every segment whose end is past its group's TTL.
pub fn drop_expired(inner: &Inner) -> Result<()> {
    if inner.env.read_only {
        return Ok(());
    }
    let now = now_ns();
    let _l = lock(&inner.published.layout);
    let ttls: BTreeMap<String, i64> = lock(&inner.writes.commit)
        .catalog
        .groups
        .iter()
        .map(|(n, g)| (n.clone(), g.settings.ttl_ns))
        .collect();
    let mut v = (*read(&inner.published.state).version).clone();
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
    write(&inner.published.state).version = Arc::new(v);
    let mut seen = std::collections::BTreeSet::new();
    for (group, seg) in doomed {
        if !seen.insert((group.clone(), seg)) {
            continue;
        }
        let from = inner
            .env
            .dir
            .join(group_rel(&group))
            .join(format!("seg-{seg}"));
        // Renamed away in one step so the live tree never holds half a segment (pinned parts
        // stay until their snapshot's release).
        super::snap::retire_tree(inner, &from, &format!("drop-{group}-seg-{seg}"))?;
        inner.stats.segments_dropped.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flushes of `sizes`, each followed by background merges until none is due. Returns the
    /// final part sizes, the bytes merges wrote, and the largest part count seen.
    fn simulate(flushes: impl IntoIterator<Item = u64>) -> (Vec<u64>, u64, usize) {
        let (mut parts, mut written, mut most) = (Vec::new(), 0u64, 0usize);
        for f in flushes {
            parts.push(f);
            most = most.max(parts.len());
            while let Some(r) = pick_window(&parts, Policy::Tiered) {
                let merged: u64 = parts[r.clone()].iter().sum();
                written += merged;
                parts.splice(r.clone(), [merged]);
            }
        }
        (parts, written, most)
    }

    #[test]
    fn a_small_part_is_never_folded_into_a_big_one() {
        // One big part and a trickle of 1 % parts: the big part is not rewritten until the new
        // data adds up to twice its size.
        let mut parts = vec![100u64];
        for round in 1..=60u64 {
            parts.push(1);
            while let Some(r) = pick_window(&parts, Policy::Tiered) {
                assert!(
                    r.start > 0 || round >= 200,
                    "round {round}: rewrote the big part"
                );
                let merged: u64 = parts[r.clone()].iter().sum();
                parts.splice(r.clone(), [merged]);
            }
            assert_eq!(parts[0], 100);
        }
        assert!(parts.len() <= 12, "{parts:?}");
    }

    #[test]
    fn equal_flushes_tier_with_logarithmic_rewrites() {
        let n = 3u64.pow(7);
        let (parts, written, most) = simulate(std::iter::repeat_n(1, n as usize));
        // Each byte rewritten about log3(n) = 7 times, parts per shard stay few.
        assert!(
            written <= 8 * n,
            "write amplification {}",
            written as f64 / n as f64
        );
        assert!(most <= 20, "{most} parts at once");
        assert!(parts.len() <= 14, "{parts:?}");
    }

    #[test]
    fn part_counts_stay_bounded_for_any_sizes() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let sizes: Vec<u64> = (0..5000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Alternate huge and tiny flushes, the shape tiers handle worst.
                if i % 2 == 0 { 1 + x % 1_000_000 } else { x % 3 }
            })
            .collect();
        let (_, _, most) = simulate(sizes);
        assert!(most <= MAX_PARTS_PER_SHARD + 1, "{most}");
    }

    #[test]
    fn full_policy_merges_everything() {
        let mut parts = vec![1000u64, 1, 5, 2];
        while let Some(r) = pick_window(&parts, Policy::Full) {
            let merged: u64 = parts[r.clone()].iter().sum();
            parts.splice(r.clone(), [merged]);
        }
        assert_eq!(parts, vec![1008]);
        assert_eq!(pick_window(&[7], Policy::Full), None);
        assert_eq!(pick_window(&[], Policy::Tiered), None);
    }
}
