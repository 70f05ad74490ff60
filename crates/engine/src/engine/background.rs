//! Named worker threads: `strata-flush` (memtable size/age/idle trigger, interval fsync, TTL,
//! snapshot expiry) and `strata-merge` (bounded part count).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

use super::state::*;

const TICK: Duration = Duration::from_millis(100);
const TTL_EVERY: Duration = Duration::from_secs(10);

pub fn spawn(inner: &Arc<Inner>) -> Result<Vec<JoinHandle<()>>> {
    let spawn = |name: &str, f: fn(&Inner)| {
        let i = inner.clone();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || f(&i))
            .map_err(|e| Error::io(&inner.dir, e))
    };
    Ok(vec![
        spawn("strata-flush", flush_loop)?,
        spawn("strata-merge", merge_loop)?,
    ])
}

fn flush_due(inner: &Inner) -> bool {
    let st = read(&inner.state);
    let m = read(&st.active);
    let idle = inner.opts.idle_flush;
    m.bytes >= inner.opts.memtable_bytes
        || m.first_insert
            .is_some_and(|t| t.elapsed() >= inner.opts.memtable_age)
        || (!idle.is_zero() && m.last_insert.is_some_and(|t| t.elapsed() >= idle))
}

fn flush_loop(inner: &Inner) {
    let mut last_ttl = Instant::now();
    while !inner.shutdown.load(Ordering::SeqCst) {
        let _ = inner.wake.1.recv_timeout(TICK);
        if inner.shutdown.load(Ordering::SeqCst) {
            break;
        }
        super::commit::sync_if_due(inner);
        if flush_due(inner)
            && let Err(e) = super::flush::flush(inner)
        {
            tracing::error!(error = %e, "background flush failed");
        }
        if last_ttl.elapsed() >= TTL_EVERY {
            last_ttl = Instant::now();
            if let Err(e) = super::merge::drop_expired(inner) {
                tracing::error!(error = %e, "TTL drop failed");
            }
            super::snap::expire(inner);
        }
    }
}

fn merge_loop(inner: &Inner) {
    while !inner.shutdown.load(Ordering::SeqCst) {
        match super::merge::merge_once(inner, super::merge::Policy::Tiered) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "background merge failed"),
        }
        std::thread::sleep(TICK * 2);
    }
}
