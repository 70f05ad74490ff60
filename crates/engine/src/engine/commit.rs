//! The write path: validation and LSN assignment under the commit lock, then group commit.
//!
//! A writer encodes its WAL record outside any lock, then under `commit` validates the batch
//! against the catalog, takes the next LSN, appends the frame to the pending buffer and inserts
//! the points into the active memtable. It then waits until its LSN is durable: whoever gets
//! the `wal` mutex first becomes the leader, writes everything pending in one `write(2)` and
//! fsyncs once for all of it (group commit).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::batch::PointBatch;
use crate::catalog::{validate_group_name, validate_settings};
use crate::error::{Error, Result};
use crate::model::GroupSettings;
use crate::record;
use crate::wal::encode_frame;

use super::FsyncPolicy;
use super::state::*;

fn check_writable(inner: &Inner) -> Result<()> {
    if inner.read_only {
        return Err(Error::InvalidInput("engine is open read-only".into()));
    }
    if inner.shutdown.load(Ordering::Relaxed) {
        return Err(Error::Closed);
    }
    if let Some(msg) = lock(&inner.poisoned).as_ref() {
        return Err(Error::Poisoned(msg.clone()));
    }
    Ok(())
}

pub fn write(inner: &Inner, group: &str, mut batch: PointBatch<'_>) -> Result<u64> {
    check_writable(inner)?;
    if batch.is_empty() {
        return Ok(lock(&inner.commit).last_lsn);
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
        let mut c = lock(&inner.commit);
        let delta = c.catalog.validate_batch(group, &batch)?;
        reject_expired(group, &c.catalog.settings(group), oldest, now_ns())?;
        let lsn = c.last_lsn + 1;
        if c.pending.is_empty() {
            c.pending_first = lsn;
        }
        encode_frame(lsn, record::KIND_WRITE, &payload, &mut c.pending);
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
    if mem_bytes >= inner.opts.memtable_bytes.saturating_mul(4) {
        // Flushing fell far behind: this writer helps (bounded memory beats latency here).
        // Out of file descriptors, the write is still durable and acknowledged; the
        // background flush retries.
        match super::flush::flush(inner) {
            Err(e) if e.is_descriptor_exhaustion() => {}
            r => r?,
        }
    } else if mem_bytes >= inner.opts.memtable_bytes {
        let _ = inner.wake.0.try_send(());
    }
    Ok(lsn)
}

/// A point whose segment is already past the group's TTL would be dropped at once: refuse the
/// batch instead of acknowledging data nobody can read back.
fn reject_expired(group: &str, settings: &GroupSettings, oldest: i64, now: i64) -> Result<()> {
    let end = segment_of(oldest, settings.segment_interval_ns)
        .saturating_add(settings.segment_interval_ns);
    if expired(end, settings.ttl_ns, now) {
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
        let mut c = lock(&inner.commit);
        f(&mut c)?;
        let lsn = c.last_lsn + 1;
        if c.pending.is_empty() {
            c.pending_first = lsn;
        }
        encode_frame(lsn, kind, payload, &mut c.pending);
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
    let retry = lock(&inner.flush_lock);
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
    let _l = lock(&inner.layout);
    {
        let mut st = super::state::write(&inner.state);
        let mut v = (*st.version).clone();
        v.shards.retain(|k, _| k.group != name);
        st.version = Arc::new(v);
    }
    // Renamed away first so a crash never leaves half a group behind; open removes leftovers.
    let from = inner.dir.join(group_rel(name));
    let to = inner
        .dir
        .join("tmp")
        .join(format!("deleted-{name}-{}", now_ns()));
    let vfs = inner.vfs();
    if vfs.exists(&from) {
        vfs.rename(&from, &to).map_err(|e| Error::io(&from, e))?;
        crate::format::fsync_dir(vfs, &data_root(&inner.dir))?;
        crate::format::remove_all(vfs, &to)?;
    }
    Ok(())
}

fn poison(inner: &Inner, e: &Error) {
    let mut p = lock(&inner.poisoned);
    if p.is_none() {
        tracing::error!(error = %e, "WAL write failed; refusing writes until reopened");
        *p = Some(e.to_string());
    }
}

/// Return once `lsn` is written (and fsynced when the policy or `force_sync` says so).
pub fn wait_durable(inner: &Inner, lsn: u64, force_sync: bool) -> Result<()> {
    loop {
        if lock(&inner.durable).done_lsn >= lsn && !force_sync {
            return Ok(());
        }
        let mut wal = lock(&inner.wal);
        if let Some(msg) = lock(&inner.poisoned).as_ref() {
            return Err(Error::Poisoned(msg.clone()));
        }
        let Some(w) = wal.as_mut() else {
            return Err(Error::InvalidInput("engine is open read-only".into()));
        };
        let mut d = lock(&inner.durable);
        if d.done_lsn >= lsn && !(force_sync && d.unsynced) {
            return Ok(());
        }
        drop(d);
        let (buf, first, last) = {
            let mut c = lock(&inner.commit);
            (std::mem::take(&mut c.pending), c.pending_first, c.last_lsn)
        };
        let sync_now = force_sync
            || match inner.opts.fsync {
                FsyncPolicy::Always => true,
                FsyncPolicy::Interval(iv) => lock(&inner.durable).last_sync.elapsed() >= iv,
                FsyncPolicy::Never => false,
            };
        let res = (|| {
            if !buf.is_empty() {
                w.append(&buf, first, last)?;
                inner
                    .stats
                    .wal_bytes
                    .fetch_add(buf.len() as u64, Ordering::Relaxed);
            }
            if sync_now {
                w.sync()?;
                inner.stats.wal_fsyncs.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })();
        if let Err(e) = res {
            poison(inner, &e);
            return Err(e);
        }
        d = lock(&inner.durable);
        if !buf.is_empty() {
            d.done_lsn = last;
            d.unsynced = true;
        }
        if sync_now {
            d.unsynced = false;
            d.last_sync = Instant::now();
        }
        if d.done_lsn >= lsn {
            return Ok(());
        }
    }
}

/// Background fsync for the `interval` policy.
pub fn sync_if_due(inner: &Inner) {
    let FsyncPolicy::Interval(iv) = inner.opts.fsync else {
        return;
    };
    let due = {
        let d = lock(&inner.durable);
        d.unsynced && d.last_sync.elapsed() >= iv
    };
    if due {
        let lsn = lock(&inner.durable).done_lsn;
        let _ = wait_durable(inner, lsn, true);
    }
}
