//! The write load and its ledger. W writer threads post line-protocol batches whose every point
//! is checkable: series `chaos,w=<writer>`, fields `b` (batch number) and `v` (a value derived
//! from writer, batch and index with the seed), timestamps `batch base + index`. Each batch is
//! recorded as sent before it is posted, and each acknowledged batch is appended to an ack log
//! and fsynced before the writer goes on. [`Ledger::check`] compares a dump with that record.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{ChaosError, Result};
use crate::http::{Client, Row, WriteOutcome};

pub const MEASURE: &str = "chaos";
/// The main group (default settings: 1-day segments, 30-day TTL).
pub const GROUP: &str = "chaos";
/// A group with 1-hour segments and a TTL chosen so that one segment expires while the loop runs.
pub const TTL_GROUP: &str = "chaos_ttl";
const HOUR: i64 = 3_600_000_000_000;

pub type BatchId = (u32, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Sent,
    Acked,
    Rejected,
    Unknown,
}

#[derive(Debug, Clone, Copy)]
pub struct Batch {
    pub state: State,
    pub ttl_group: bool,
    /// Timestamp of point 0; point i is at `base + i`.
    pub base: i64,
    /// In the segment that expires at [`Plan::expires_at`].
    pub expiring: bool,
    /// Wall time (ns) the batch was recorded as sent (before the request): its commit time
    /// is later.
    pub sent_ns: i64,
    /// Wall time (ns) the acknowledgement arrived: its commit time is earlier.
    pub acked_ns: Option<i64>,
}

/// Where batches go, fixed per data directory.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub seed: u64,
    pub points: usize,
    /// Base of the main group's timestamps (recent, well inside the default TTL).
    pub base: i64,
    /// End of the TTL group's expiring segment; writes go there until shortly before
    /// `expires_at`.
    pub expiring_end: i64,
    /// Wall time (ns) after which the expiring segment is past the TTL.
    pub expires_at: i64,
    /// Start of the TTL group's live segment.
    pub live_start: i64,
    pub ttl_ns: i64,
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Plan {
    /// A plan whose expiring segment passes the TTL `expire_in` from now.
    pub fn new(seed: u64, points: usize, expire_in: Duration) -> Plan {
        let now = now_ns();
        let hour = now - now.rem_euclid(HOUR);
        let expiring_end = hour - HOUR;
        let expires_at = now + expire_in.as_nanos() as i64;
        Plan {
            seed,
            points,
            base: hour - 2 * HOUR,
            expiring_end,
            expires_at,
            live_start: hour,
            // A segment [s, e) is dropped once e < now - ttl.
            ttl_ns: expires_at - expiring_end,
        }
    }

    pub fn ttl_settings(&self) -> serde_json::Value {
        serde_json::json!({"segment_interval": "1h", "ttl_ns": self.ttl_ns})
    }

    pub fn value(&self, w: u32, b: u64, i: usize) -> i64 {
        let mut x = self.seed ^ ((w as u64) << 48) ^ (b << 16) ^ i as u64;
        // splitmix64
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((x ^ (x >> 31)) >> 1) as i64
    }

    fn body(&self, w: u32, b: u64, base: i64) -> String {
        let mut s = String::with_capacity(self.points * 64);
        for i in 0..self.points {
            let _ = writeln!(
                s,
                "{MEASURE},w=w{w} b={b}i,v={}i {}",
                self.value(w, b, i),
                base + i as i64
            );
        }
        s
    }
}

/// Counts from one check.
#[derive(Debug, Clone, Default)]
pub struct Check {
    pub points_checked: u64,
    pub acked_batches: u64,
    pub lost: u64,
    pub phantom: u64,
    pub torn: u64,
    /// Batches of the expired segment that are gone (allowed).
    pub expired_gone: u64,
    pub problems: Vec<String>,
}

impl Check {
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.phantom == 0 && self.torn == 0
    }

    fn problem(&mut self, p: String) {
        if self.problems.len() < 10 {
            self.problems.push(p);
        }
    }
}

pub struct Ledger {
    pub plan: Plan,
    batches: Mutex<BTreeMap<BatchId, Batch>>,
    ack_log: Mutex<File>,
}

impl Ledger {
    pub fn new(plan: Plan, ack_log: &Path) -> Result<Ledger> {
        let f = File::create(ack_log).map_err(ChaosError::io(format!(
            "create ack log {}",
            ack_log.display()
        )))?;
        Ok(Ledger {
            plan,
            batches: Mutex::new(BTreeMap::new()),
            ack_log: Mutex::new(f),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<BatchId, Batch>> {
        self.batches.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the next batch of writer `w` as sent; returns its id, group and body.
    pub fn next(&self, w: u32, rng_pick: u64) -> (BatchId, &'static str, String) {
        let p = &self.plan;
        let mut m = self.lock();
        let b = m
            .range((w, 0)..(w + 1, 0))
            .next_back()
            .map_or(0, |(k, _)| k.1 + 1);
        // A third of the batches go to the TTL group; of those, half to the expiring segment
        // while it still accepts writes (with a margin for the request's own latency).
        let ttl_group = rng_pick.is_multiple_of(3);
        let expiring =
            ttl_group && (rng_pick >> 8) & 1 == 0 && now_ns() < p.expires_at - 3_000_000_000;
        let off = b as i64 * p.points as i64;
        let base = match (ttl_group, expiring) {
            (false, _) => p.base + off,
            (true, true) => p.expiring_end - HOUR + off,
            (true, false) => p.live_start + off,
        };
        m.insert(
            (w, b),
            Batch {
                state: State::Sent,
                ttl_group,
                base,
                expiring,
                sent_ns: now_ns(),
                acked_ns: None,
            },
        );
        let group = if ttl_group { TTL_GROUP } else { GROUP };
        ((w, b), group, p.body(w, b, base))
    }

    pub fn settle(&self, id: BatchId, outcome: WriteOutcome) -> Result<()> {
        let state = match outcome {
            WriteOutcome::Acked => State::Acked,
            WriteOutcome::Rejected(_) => State::Rejected,
            WriteOutcome::Unknown => State::Unknown,
        };
        if let Some(b) = self.lock().get_mut(&id) {
            b.state = state;
            if state == State::Acked {
                b.acked_ns = Some(now_ns());
            }
        }
        if state == State::Acked {
            let mut f = self.ack_log.lock().unwrap_or_else(|e| e.into_inner());
            writeln!(f, "ack w{} b{}", id.0, id.1)
                .and_then(|_| f.sync_data())
                .map_err(ChaosError::io("append to the ack log"))?;
        }
        Ok(())
    }

    /// Batches acknowledged so far.
    pub fn acked(&self) -> HashSet<BatchId> {
        self.lock()
            .iter()
            .filter(|(_, b)| b.state == State::Acked)
            .map(|(k, _)| *k)
            .collect()
    }

    /// What a point-in-time restore to `t` (ns) must hold and may hold: every batch
    /// acknowledged at or before `t` (committed before it), and at most the batches sent at or
    /// before `t` (a batch sent later was committed later).
    pub fn cut_at(&self, t: i64) -> (HashSet<BatchId>, HashSet<BatchId>) {
        let m = self.lock();
        let required = m
            .iter()
            .filter(|(_, b)| b.state == State::Acked && b.acked_ns.is_some_and(|a| a <= t))
            .map(|(k, _)| *k)
            .collect();
        let allowed = m
            .iter()
            .filter(|(_, b)| b.sent_ns <= t)
            .map(|(k, _)| *k)
            .collect();
        (required, allowed)
    }

    /// The newest acknowledgement time (ns), if any.
    pub fn last_ack_ns(&self) -> Option<i64> {
        self.lock().values().filter_map(|b| b.acked_ns).max()
    }

    /// Compares `rows` with the record. `required`: batches that must be whole (default: every
    /// acknowledged one). `allowed`: batches that may appear (default: every one sent). Every
    /// batch appears whole or not at all; rows no batch explains are phantoms.
    pub fn check(
        &self,
        rows: &[Row],
        required: Option<&HashSet<BatchId>>,
        allowed: Option<&HashSet<BatchId>>,
        at: i64,
    ) -> Check {
        let p = self.plan;
        let batches = self.lock().clone();
        let mut c = Check::default();
        let mut counts: BTreeMap<BatchId, usize> = BTreeMap::new();
        let mut seen: HashSet<(bool, u32, i64)> = HashSet::new();
        for r in rows {
            if r.measure != MEASURE || (r.group != GROUP && r.group != TTL_GROUP) {
                c.phantom += 1;
                c.problem(format!("unexpected row {r:?}"));
                continue;
            }
            c.points_checked += 1;
            let ttl = r.group == TTL_GROUP;
            let w = r
                .tag("w")
                .and_then(|w| w.strip_prefix('w')?.parse::<u32>().ok());
            let (Some(w), Some(b), Some(v)) = (w, r.int_field("b"), r.int_field("v")) else {
                c.phantom += 1;
                c.problem(format!("row without writer/batch/value {r:?}"));
                continue;
            };
            let id = (w, b as u64);
            let i = batches
                .get(&id)
                .filter(|bt| bt.ttl_group == ttl && allowed.is_none_or(|a| a.contains(&id)))
                .filter(|bt| bt.state != State::Rejected)
                .map(|bt| r.ts - bt.base)
                .filter(|i| (0..p.points as i64).contains(i));
            let Some(i) = i else {
                c.phantom += 1;
                c.problem(format!(
                    "row of a batch never written (or not in this cut) {r:?}"
                ));
                continue;
            };
            if v != p.value(w, b as u64, i as usize) || r.fields.len() != 2 {
                c.phantom += 1;
                c.problem(format!("row with a value never written {r:?}"));
                continue;
            }
            if !seen.insert((ttl, w, r.ts)) {
                c.phantom += 1;
                c.problem(format!("duplicate row {r:?}"));
                continue;
            }
            *counts.entry(id).or_default() += 1;
        }
        for (id, bt) in &batches {
            let n = counts.get(id).copied().unwrap_or(0);
            let must = match required {
                Some(r) => r.contains(id),
                None => bt.state == State::Acked,
            };
            if bt.state == State::Acked {
                c.acked_batches += 1;
            }
            if bt.expiring && at > p.expires_at {
                // Past the TTL: the engine may have dropped its segment, wholly or not yet.
                c.expired_gone += u64::from(n == 0);
                continue;
            }
            if must && n < p.points {
                c.lost += (p.points - n) as u64;
                c.problem(format!(
                    "batch w{} b{} ({:?}): {n} of {} points",
                    id.0, id.1, bt.state, p.points
                ));
            } else if n != 0 && n != p.points {
                c.torn += 1;
                c.problem(format!(
                    "batch w{} b{} ({:?}) is torn: {n} of {} points",
                    id.0, id.1, bt.state, p.points
                ));
            }
        }
        c
    }
}

/// Writer threads posting to whatever URL `target` holds, until stopped.
pub struct Writers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<()>>>,
}

impl Writers {
    /// `pace`: pause after each acknowledged batch (bounds how much data a long run piles up).
    pub fn start(
        ledger: &Arc<Ledger>,
        target: &Arc<RwLock<String>>,
        n: u32,
        seed: u64,
        pace: Duration,
    ) -> Result<Writers> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for w in 0..n {
            let (ledger, target, stop) = (ledger.clone(), target.clone(), stop.clone());
            let client = Client::new()?;
            let t = std::thread::Builder::new()
                .name(format!("chaos-writer-{w}"))
                .spawn(move || {
                    let mut pick = seed ^ ((w as u64 + 1) << 32);
                    while !stop.load(Ordering::SeqCst) {
                        pick = pick
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let (id, group, body) = ledger.next(w, pick >> 33);
                        let url = target.read().unwrap_or_else(|e| e.into_inner()).clone();
                        let outcome = client.write(&url, group, body);
                        ledger.settle(id, outcome)?;
                        if outcome != WriteOutcome::Acked {
                            // The server is down or refusing: do not spin.
                            std::thread::sleep(Duration::from_millis(20));
                        } else if !pace.is_zero() {
                            std::thread::sleep(pace);
                        }
                    }
                    Ok(())
                })
                .map_err(ChaosError::io("spawn a writer thread"))?;
            threads.push(t);
        }
        Ok(Writers { stop, threads })
    }

    pub fn stop(self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            match t.join() {
                Ok(r) => r?,
                Err(_) => {
                    return Err(ChaosError::io("join a writer")(std::io::Error::other(
                        "writer panicked",
                    )));
                }
            }
        }
        Ok(())
    }
}
