//! An aggregation scan's series answered on several threads ([`super::series::Scope::answer`]
//! per series) and handed to the sink one at a time in series-key order, as a single-threaded
//! scan hands them: answers are the same to the byte, only sooner. Series are independent
//! (each reads its own blocks; part tables are shared and thread-safe).
//!
//! Memory stays close to the single-threaded scan's: a worker takes a series only within
//! [`AHEAD`] per thread of the one the sink is at, so at most that many answered series wait
//! (aggregation sinks fold each series and drop it, and plain scans, whose sinks keep every
//! row, stay on one thread). The sink is asked whether to go on before each series, as
//! before, and every few milliseconds while it waits, so a cancelled query stops its workers
//! between blocks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::error::Result;
use crate::memtable::SeriesMeta;
use crate::scan::SummarySink;

use super::read::Source;
use super::series::{Answer, Scope};

/// Whether scans may use several threads (off: every scan on the caller's thread).
const ENABLED: bool = true;
/// Fewer series than this stay on the caller's thread (threads cost more than they save).
const MIN_SERIES: usize = 8;
/// Series answered ahead of the sink, per thread.
const AHEAD: usize = 2;
/// How often the sink is asked whether to go on while it waits for a series.
const POLL: Duration = Duration::from_millis(5);

/// How many threads answer this scan's `series` series, `None` for the caller's thread only:
/// aggregation scans (a plan) of enough series on a machine with several cores.
pub(super) fn threads(scope: &Scope<'_>, series: usize) -> Option<usize> {
    if !ENABLED || scope.plan.is_none() || series < MIN_SERIES {
        return None;
    }
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    (n >= 2).then_some(n)
}

type Item = (Arc<SeriesMeta>, Vec<Source>);

/// Answer `per_series` on `threads` threads, handing the answers to `sink` in key order.
pub(super) fn run(
    scope: &Scope<'_>,
    per_series: BTreeMap<Arc<SeriesMeta>, Vec<Source>>,
    threads: usize,
    sink: &mut dyn SummarySink,
) -> Result<()> {
    let items: Vec<Mutex<Option<Item>>> = per_series
        .into_iter()
        .map(|x| Mutex::new(Some(x)))
        .collect();
    let n = items.len();
    let window = threads * AHEAD;
    let next = AtomicUsize::new(0);
    let stopped = AtomicBool::new(false);
    // How many series the sink has been handed (a worker waits until its series is within
    // the window of that).
    let taken = (Mutex::new(0usize), Condvar::new());
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<Option<Answer>>)>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (items, next, stopped, taken) = (&items, &next, &stopped, &taken);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    {
                        let mut t = lock(&taken.0);
                        while i >= *t + window && !stopped.load(Ordering::Relaxed) {
                            t = taken.1.wait(t).unwrap_or_else(PoisonError::into_inner);
                        }
                    }
                    if stopped.load(Ordering::Relaxed) {
                        return;
                    }
                    let item = items[i]
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take();
                    let Some((meta, sources)) = item else {
                        return;
                    };
                    let r = scope.answer(&meta, sources, &mut || !stopped.load(Ordering::Relaxed));
                    if tx.send((i, r)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let result = deliver(n, &rx, sink, &taken);
        // Workers still waiting for the window, or answering series no one will take, stop.
        {
            let _t = lock(&taken.0);
            stopped.store(true, Ordering::Relaxed);
        }
        taken.1.notify_all();
        result
    })
}

fn lock(m: &Mutex<usize>) -> std::sync::MutexGuard<'_, usize> {
    // A panicking worker is re-raised by the scope; the count itself stays valid.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hand the `n` answers to `sink` in order, as the single-threaded scan does: the sink is
/// asked whether to go on before each series; an error stops the scan at its series.
fn deliver(
    n: usize,
    rx: &std::sync::mpsc::Receiver<(usize, Result<Option<Answer>>)>,
    sink: &mut dyn SummarySink,
    taken: &(Mutex<usize>, Condvar),
) -> Result<()> {
    let mut early: BTreeMap<usize, Result<Option<Answer>>> = BTreeMap::new();
    for want in 0..n {
        if !sink.keep_going() {
            return Ok(());
        }
        let r = loop {
            if let Some(r) = early.remove(&want) {
                break r;
            }
            match rx.recv_timeout(POLL) {
                Ok((i, r)) => {
                    early.insert(i, r);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if !sink.keep_going() {
                        return Ok(());
                    }
                }
                // Every worker is gone without this series: they only leave early when told
                // to stop, which happens after this returns; a panic is re-raised by the scope.
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            }
        };
        if let Some((sd, blocks)) = r?
            && !sink.series(sd, blocks)
        {
            return Ok(());
        }
        *lock(&taken.0) = want + 1;
        taken.1.notify_all();
    }
    Ok(())
}
