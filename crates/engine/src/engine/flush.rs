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
use crate::memtable::{Memtable, SeriesMeta};
use crate::part::{PartIdentity, PartReader};
use crate::rows::Rows;

use super::durable::wait_durable;
use super::publish::{write_checkpoint, write_manifest, write_part_into_shard};
use super::route::{Route, route, segment_runs};
use super::state::*;

pub fn flush(inner: &Inner) -> Result<()> {
    if inner.env.read_only {
        return Ok(());
    }
    let mut retry = lock(&inner.background.flush_lock);
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
    poison_on(inner, "flush", e)
}

/// Refuse writes until reopen after `what` failed half-way (reopening recovers).
pub(super) fn poison_on(inner: &Inner, what: &str, e: Error) -> Error {
    if inner.writes.poison(|| format!("{what} failed: {e}")) {
        tracing::error!(error = %e, "{what} failed; refusing writes until reopened");
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
    inner.writes.check_poisoned()?;
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
    let mut c = lock(&inner.writes.commit);
    if read(&c.active).is_empty() {
        return None;
    }
    Some(freeze_commit(inner, &mut c))
}

/// Freeze the active memtable at the current last LSN, under the caller's `commit` guard
/// (adoption freezes even an empty memtable: its cut is the adoption's).
pub(super) fn freeze_commit(inner: &Inner, c: &mut Commit) -> Frozen {
    let cut = c.last_lsn;
    let prev_cut = c.last_freeze;
    let fresh: MemRef = Arc::new(RwLock::new(Memtable::default()));
    let old = std::mem::replace(&mut c.active, fresh.clone());
    c.last_freeze = cut;
    let mut st = write(&inner.published.state);
    st.frozen.push(old.clone());
    st.active = fresh;
    Frozen {
        mem: old,
        prev_cut,
        cut,
        catalog: c.catalog.clone(),
    }
}

impl Frozen {
    pub(super) fn cut(&self) -> u64 {
        self.cut
    }

    pub(super) fn catalog(&self) -> &CatalogState {
        &self.catalog
    }

    /// Build the parts of this memtable, leaving out the rows of `skip` (groups an adoption
    /// replaces: their rows up to the cut belong to the data it supersedes).
    pub(super) fn build_parts(
        &self,
        inner: &Inner,
        skip: &[String],
        out: &mut Vec<BuiltPart>,
    ) -> Result<()> {
        build_parts(
            inner,
            &read(&self.mem),
            &self.catalog,
            self.prev_cut,
            self.cut,
            skip,
            out,
        )
    }

    /// Whether `mem` is this frozen memtable.
    pub(super) fn is(&self, mem: &MemRef) -> bool {
        Arc::ptr_eq(&self.mem, mem)
    }
}

/// Write a frozen memtable to parts, publish them and the checkpoint. On descriptor
/// exhaustion, hands the memtable back for a retry; on any other failure, poisons.
fn write_frozen(inner: &Inner, f: Frozen) -> Result<(), (Frozen, Error)> {
    let mut built = Vec::new();
    let res = (|| {
        if let Some(w) = lock(&inner.writes.wal).as_mut() {
            w.rotate()?;
        }
        build_parts(
            inner,
            &read(&f.mem),
            &f.catalog,
            f.prev_cut,
            f.cut,
            &[],
            &mut built,
        )?;
        publish(inner, &mut built, f.cut, &f.catalog, &f.mem)
    })();
    match res {
        Ok(()) => Ok(()),
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
    pub route: Route,
    pub part: PartReader,
}

/// The rows a flush writes into one shard of one segment.
struct Bucket<'a> {
    route: Route,
    series: Vec<(&'a SeriesMeta, Rows)>,
}

fn build_parts(
    inner: &Inner,
    mem: &Memtable,
    catalog: &CatalogState,
    prev_cut: u64,
    cut: u64,
    skip: &[String],
    out: &mut Vec<BuiltPart>,
) -> Result<()> {
    let version = inner.published.version();
    let mut groups: Vec<&String> = mem.groups.keys().filter(|g| !skip.contains(g)).collect();
    groups.sort();
    for group in groups {
        let settings = catalog.settings(group);
        let mut buckets: BTreeMap<(i64, u32), Bucket<'_>> = BTreeMap::new();
        for ms in mem.groups[group].values() {
            for s in ms.values() {
                let rows = s.resolved();
                let sid = s.meta.sid();
                // Rows are in time order: split them at segment ends (runs that always advance:
                // splitting at the first `t >= segment_end` never advanced past a point at
                // i64::MAX, whose segment end saturates to i64::MAX itself).
                for (_, run) in segment_runs(&rows.ts, settings.segment_interval_ns) {
                    let route = route(&version, group, &settings, rows.ts[run.start], sid);
                    let part = if run.start == 0 && run.end == rows.len() {
                        rows.clone()
                    } else {
                        rows.slice(run.start, run.end)
                    };
                    buckets
                        .entry((route.segment, route.shard))
                        .or_insert_with(|| Bucket {
                            route,
                            series: Vec::new(),
                        })
                        .series
                        .push((&s.meta, part));
                }
            }
        }
        for ((seg, shard), mut bucket) in buckets {
            bucket.series.sort_by(|a, b| a.0.cmp(b.0));
            let key = ShardKey {
                group: group.clone(),
                segment: seg,
                shard,
            };
            let flushed = version.shards.get(&key).map_or(0, |s| s.flushed_lsn);
            let id = inner
                .published
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
            if let Some(part) = write_part_into_shard(inner, &key, ident, bucket.series)? {
                out.push(BuiltPart {
                    key,
                    route: bucket.route,
                    part,
                });
            }
        }
    }
    Ok(())
}

/// Add built parts to `v`, publishing one manifest per shard (caller holds `layout`). Parts
/// of a group the catalog no longer holds are removed instead.
pub(super) fn add_built(
    inner: &Inner,
    v: &mut Version,
    built: &mut Vec<BuiltPart>,
    cut: u64,
    catalog: &CatalogState,
) -> Result<()> {
    built.reverse();
    while let Some(b) = built.pop() {
        if !catalog.groups.contains_key(&b.key.group) {
            crate::format::remove_all(inner.vfs(), &b.part.dir)?;
            continue;
        }
        let s = v.shards.entry(b.key.clone()).or_insert_with(|| ShardState {
            epoch: 0,
            flushed_lsn: 0,
            segment_end: b.route.segment_end,
            shards: b.route.shards,
            parts: Vec::new(),
        });
        s.parts.push(Arc::new(b.part));
        s.parts.sort_by_key(|p| p.meta.min_lsn);
        s.flushed_lsn = s.flushed_lsn.max(cut);
        s.epoch += 1;
        write_manifest(inner, &b.key, s)?;
    }
    Ok(())
}

/// Publish new parts (one manifest per shard) and the checkpoint at `cut`.
///
/// Parts still in `built` when this fails are in no manifest (the caller may remove them); a
/// part whose manifest write failed may be listed by that manifest on disk, so it is taken out
/// of `built` first. A retry rewrites every manifest from the in-memory version (same epochs).
///
/// The new part set and the frozen memtable's retirement are one change of the read state, so a
/// reader (or `stats`) never sees the rows in both, nor in neither.
fn publish(
    inner: &Inner,
    built: &mut Vec<BuiltPart>,
    cut: u64,
    catalog: &CatalogState,
    frozen: &MemRef,
) -> Result<()> {
    let _l = lock(&inner.published.layout);
    let mut v = (*read(&inner.published.state).version).clone();
    add_built(inner, &mut v, built, cut, catalog)?;
    write_checkpoint(inner, catalog, cut)?;
    {
        let mut st = write(&inner.published.state);
        st.version = Arc::new(v);
        st.frozen.retain(|m| !Arc::ptr_eq(m, frozen));
    }
    if let Some(w) = lock(&inner.writes.wal).as_mut() {
        let through = inner.archive.deletable_through(cut, &w.segments());
        w.delete_through(through)?;
    }
    Ok(())
}
