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
            .map_err(|e| Error::io(&inner.env.dir, e))
    };
    Ok(vec![
        spawn("strata-flush", flush_loop)?,
        spawn("strata-merge", merge_loop)?,
    ])
}

fn flush_due(inner: &Inner) -> bool {
    let st = read(&inner.published.state);
    let m = read(&st.active);
    let idle = inner.env.opts.idle_flush;
    m.bytes >= inner.env.opts.memtable_bytes
        || m.first_insert
            .is_some_and(|t| t.elapsed() >= inner.env.opts.memtable_age)
        || (!idle.is_zero() && m.last_insert.is_some_and(|t| t.elapsed() >= idle))
}

/// Delay before retrying background work that failed: doubles from [`TICK`] up to
/// [`MAX_BACKOFF`], so a persistent failure (no file descriptor free, say) neither spins nor
/// floods the log, and work resumes within seconds once the cause is gone.
pub struct Backoff {
    delay: Duration,
    next: Option<Instant>,
    failures: u32,
}

const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Backoff {
    pub fn new() -> Backoff {
        Backoff {
            delay: TICK,
            next: None,
            failures: 0,
        }
    }

    pub fn ready(&self) -> bool {
        self.next.is_none_or(|t| Instant::now() >= t)
    }

    /// Record a failure; returns whether it is worth logging (the first of a run, then
    /// every time the delay reached its ceiling).
    pub fn failed(&mut self) -> bool {
        self.failures += 1;
        self.next = Some(Instant::now() + self.delay);
        let log = self.failures == 1 || self.delay == MAX_BACKOFF;
        self.delay = (self.delay * 2).min(MAX_BACKOFF);
        log
    }

    /// Record a success; returns how many failures preceded it.
    pub fn succeeded(&mut self) -> u32 {
        let n = self.failures;
        *self = Backoff::new();
        n
    }
}

fn flush_loop(inner: &Inner) {
    let mut last_ttl = Instant::now();
    let mut backoff = Backoff::new();
    while !inner.background.shutdown.load(Ordering::SeqCst) {
        let _ = inner.background.wake.1.recv_timeout(TICK);
        if inner.background.shutdown.load(Ordering::SeqCst) {
            break;
        }
        super::durable::sync_if_due(inner);
        if backoff.ready() && (flush_due(inner) || flush_retry_pending(inner)) {
            match super::flush::flush(inner) {
                Ok(()) => {
                    let n = backoff.succeeded();
                    if n > 0 {
                        tracing::info!(failures = n, "background flush recovered");
                    }
                }
                Err(e) => {
                    if backoff.failed() {
                        tracing::error!(error = %e, "background flush failed");
                    }
                }
            }
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

/// A flush postponed for want of file descriptors waits for its retry.
fn flush_retry_pending(inner: &Inner) -> bool {
    lock(&inner.background.flush_lock).is_some()
}

fn merge_loop(inner: &Inner) {
    let mut backoff = Backoff::new();
    while !inner.background.shutdown.load(Ordering::SeqCst) {
        if backoff.ready() {
            match super::merge::merge_once(inner, super::merge::Policy::Tiered) {
                Ok(true) => {
                    backoff.succeeded();
                    continue;
                }
                Ok(false) => {
                    backoff.succeeded();
                }
                Err(e) => {
                    if backoff.failed() {
                        tracing::error!(error = %e, "background merge failed");
                    }
                }
            }
        }
        std::thread::sleep(TICK * 2);
    }
}
