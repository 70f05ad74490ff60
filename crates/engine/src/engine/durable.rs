//! Group commit: making pending WAL frames durable.
//!
//! Writers append encoded frames to `Commit::pending` under the commit lock and then wait here
//! until their LSN is durable: whoever gets the `wal` mutex first becomes the leader, writes
//! everything pending in one `write(2)` and fsyncs once for all of it (per the fsync policy).
//! A failed write or fsync poisons the engine: nothing more is accepted until reopen.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::error::{Error, Result};

use super::options::FsyncPolicy;
use super::state::*;

fn poison(inner: &Inner, e: &Error) {
    if inner.writes.poison(|| e.to_string()) {
        tracing::error!(error = %e, "WAL write failed; refusing writes until reopened");
    }
}

/// Return once `lsn` is written (and fsynced when the policy or `force_sync` says so).
pub fn wait_durable(inner: &Inner, lsn: u64, force_sync: bool) -> Result<()> {
    loop {
        if lock(&inner.writes.durable).done_lsn >= lsn && !force_sync {
            return Ok(());
        }
        let mut wal = lock(&inner.writes.wal);
        inner.writes.check_poisoned()?;
        let Some(w) = wal.as_mut() else {
            return Err(Error::InvalidInput("engine is open read-only".into()));
        };
        let mut d = lock(&inner.writes.durable);
        if d.done_lsn >= lsn && !(force_sync && d.unsynced) {
            return Ok(());
        }
        drop(d);
        let (buf, first, last) = {
            let mut c = lock(&inner.writes.commit);
            (std::mem::take(&mut c.pending), c.pending_first, c.last_lsn)
        };
        let sync_now = force_sync
            || match inner.env.opts.fsync {
                FsyncPolicy::Always => true,
                FsyncPolicy::Interval(iv) => lock(&inner.writes.durable).last_sync.elapsed() >= iv,
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
        d = lock(&inner.writes.durable);
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
    let FsyncPolicy::Interval(iv) = inner.env.opts.fsync else {
        return;
    };
    let due = {
        let d = lock(&inner.writes.durable);
        d.unsynced && d.last_sync.elapsed() >= iv
    };
    if due {
        let lsn = lock(&inner.writes.durable).done_lsn;
        let _ = wait_durable(inner, lsn, true);
    }
}
