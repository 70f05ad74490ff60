//! The write path: validation and LSN assignment under the commit lock, then group commit.
//!
//! A writer encodes its WAL record outside any lock, then under `commit` validates the batch
//! against the catalog, takes the next LSN, appends the frame to the pending buffer and inserts
//! the points into the active memtable. It then waits until its LSN is durable (`durable`:
//! group commit).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::batch::PointBatch;
use crate::catalog::{validate_group_name, validate_settings};
use crate::error::{Error, Result};
use crate::model::GroupSettings;
use crate::record;
use crate::wal::encode_frame;

use super::durable::wait_durable;
use super::route::point_expired;
use super::state::*;

fn check_writable(inner: &Inner) -> Result<()> {
    if inner.env.read_only {
        return Err(Error::InvalidInput("engine is open read-only".into()));
    }
    if inner.background.shutdown.load(Ordering::Relaxed) {
        return Err(Error::Closed);
    }
    inner.writes.check_poisoned()
}

/// A durable batch: its LSN, and the active memtable's size after it (the caller decides
/// whether a flush is due; the commit path itself never flushes).
pub struct Committed {
    pub lsn: u64,
    pub mem_bytes: usize,
}

pub fn write(inner: &Inner, group: &str, mut batch: PointBatch<'_>) -> Result<Committed> {
    check_writable(inner)?;
    if batch.is_empty() {
        return Ok(Committed {
            lsn: lock(&inner.writes.commit).last_lsn,
            mem_bytes: 0,
        });
    }
    // Sorted in place: the WAL record and the memtable both want tags in key order.
    if let Some((measure, key)) = batch.sort_tags() {
        return Err(Error::InvalidInput(format!(
            "measure '{measure}': duplicate tag key '{key}'"
        )));
    }
    let mut payload = Vec::new();
    record::encode_write(group, &batch, &mut payload);
    let oldest = batch.iter().map(|p| p.timestamp).min().unwrap_or(i64::MAX);
    let (lsn, mem_bytes) = {
        let mut c = lock(&inner.writes.commit);
        let delta = c
            .catalog
            .validate_batch(group, &batch, &field_caps(inner))?;
        reject_expired(group, &c.catalog.settings(group), oldest, now_ns())?;
        let lsn = c.last_lsn + 1;
        if c.pending.is_empty() {
            c.pending_first = lsn;
        }
        let t = c.commit_time();
        encode_frame(lsn, record::KIND_WRITE, t, &payload, &mut c.pending);
        c.catalog.apply(group, delta);
        let mut m = write_lock(&c.active);
        for p in batch.iter() {
            m.insert(group, &p, lsn);
        }
        m.last_insert = Some(Instant::now());
        let bytes = m.bytes;
        drop(m);
        c.last_lsn = lsn;
        (lsn, bytes)
    };
    inner
        .stats
        .points_written
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    wait_durable(inner, lsn, false)?;
    Ok(Committed { lsn, mem_bytes })
}

fn field_caps(inner: &Inner) -> crate::catalog::FieldCaps {
    crate::catalog::FieldCaps {
        per_point: inner.env.opts.max_fields_per_point,
        per_measure: inner.env.opts.max_fields_per_measure,
    }
}

/// A point whose segment is already past the group's TTL would be dropped at once: refuse the
/// batch instead of acknowledging data nobody can read back.
fn reject_expired(group: &str, settings: &GroupSettings, oldest: i64, now: i64) -> Result<()> {
    if point_expired(oldest, settings, now) {
        return Err(Error::InvalidInput(format!(
            "timestamp {oldest} ns is older than group '{group}' retains (TTL {} h): \
             the point would be dropped at once; raise the group's ttl or send newer points",
            settings.ttl_ns / 3_600_000_000_000
        )));
    }
    Ok(())
}

fn write_lock(m: &MemRef) -> std::sync::RwLockWriteGuard<'_, crate::memtable::Memtable> {
    super::state::write(m)
}

/// Append a non-data record (group settings, deletion) and apply `f` under the commit lock.
fn append_control(
    inner: &Inner,
    kind: u8,
    payload: &[u8],
    f: impl FnOnce(&mut Commit) -> Result<()>,
) -> Result<u64> {
    let lsn = {
        let mut c = lock(&inner.writes.commit);
        f(&mut c)?;
        let lsn = c.last_lsn + 1;
        if c.pending.is_empty() {
            c.pending_first = lsn;
        }
        let t = c.commit_time();
        encode_frame(lsn, kind, t, payload, &mut c.pending);
        c.last_lsn = lsn;
        lsn
    };
    wait_durable(inner, lsn, true)?;
    Ok(lsn)
}

pub fn put_group(inner: &Inner, name: &str, settings: GroupSettings) -> Result<()> {
    check_writable(inner)?;
    validate_group_name(name)?;
    validate_settings(&settings)?;
    let payload = record::encode_put_group(name, &settings);
    append_control(inner, record::KIND_PUT_GROUP, &payload, |c| {
        c.catalog
            .groups
            .entry(name.to_string())
            .or_default()
            .settings = settings;
        Ok(())
    })?;
    Ok(())
}

pub fn delete_group(inner: &Inner, name: &str) -> Result<()> {
    check_writable(inner)?;
    // No flush may be building parts for this group while it goes away.
    let retry = lock(&inner.background.flush_lock);
    let payload = record::encode_delete_group(name);
    append_control(inner, record::KIND_DELETE_GROUP, &payload, |c| {
        if c.catalog.groups.remove(name).is_none() {
            return Err(Error::GroupNotFound(name.to_string()));
        }
        write_lock(&c.active).remove_group(name);
        // A flush waiting for a retry must not bring the group back.
        if let Some(f) = retry.as_ref() {
            f.remove_group(name);
        }
        Ok(())
    })?;
    let _l = lock(&inner.published.layout);
    {
        let mut st = super::state::write(&inner.published.state);
        let mut v = (*st.version).clone();
        v.shards.retain(|k, _| k.group != name);
        st.version = Arc::new(v);
    }
    // Renamed away first so a crash never leaves half a group behind; open removes leftovers
    // (pinned parts stay until their snapshot's release).
    let from = inner.env.dir.join(group_rel(name));
    super::snap::retire_tree(inner, &from, &format!("deleted-{name}-{}", now_ns()))
}
