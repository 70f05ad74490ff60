//! Crash test: a child process (this test binary re-invoked) writes batches and prints each
//! acknowledgement; the parent kills it with SIGKILL at random moments, reopens the data dir and
//! checks that every acknowledged batch is there whole, and nothing that was never written is.
//!
//! `STRATA_CRASH_ITERATIONS` sets the number of kills (default 20).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use strata_engine::{Engine, EngineOptions, FieldValue, FsyncPolicy, Point};

const BATCH: i64 = 100;
const CHILD_ENV: &str = "STRATA_CRASH_CHILD_DIR";

fn batch_points(base: i64, batch: i64) -> Vec<Point> {
    (0..BATCH)
        .map(|i| {
            let n = batch * 1000 + i;
            Point {
                measure: "cpu".into(),
                tags: vec![("host".into(), format!("h{}", i % 10))],
                fields: vec![
                    ("usage".into(), FieldValue::F64(n as f64)),
                    ("n".into(), FieldValue::I64(n)),
                ],
                timestamp: base + n,
            }
        })
        .collect()
}

/// The child: runs only when re-invoked by the parent.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let base: i64 = std::env::var("STRATA_CRASH_BASE").unwrap().parse().unwrap();
    let first: i64 = std::env::var("STRATA_CRASH_FIRST")
        .unwrap()
        .parse()
        .unwrap();
    let policy = std::env::var("STRATA_CRASH_FSYNC").unwrap();
    let mut o = EngineOptions::new(&dir);
    o.fsync = policy.parse().unwrap();
    o.memtable_bytes = 64 << 10;
    o.memtable_age = Duration::from_millis(50);
    let e = Engine::open(o).unwrap();
    let mut out = std::io::stdout().lock();
    for b in first.. {
        e.write("g", &batch_points(base, b)).unwrap();
        use std::io::Write;
        writeln!(out, "ACK {b}").unwrap();
        out.flush().unwrap();
        if b % 25 == 0 {
            let s = e.snapshot().unwrap();
            e.release_snapshot(&s.id).unwrap();
        }
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let iterations: usize = std::env::var("STRATA_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let d = tempfile::tempdir().unwrap();
    let base = common::recent();
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<i64> = Vec::new();
    let mut next = 0i64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for it in 0..iterations {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let policy = ["always", "never", "interval:5ms"][it % 3];
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, d.path())
            .env("STRATA_CRASH_BASE", base.to_string())
            .env("STRATA_CRASH_FIRST", next.to_string())
            .env("STRATA_CRASH_FSYNC", policy)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<i64>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(b) = line.strip_prefix("ACK ") {
                    let _ = tx.send(b.trim().parse().unwrap());
                }
            }
        });
        // Kill after a random number of acknowledgements (or a time limit).
        let want = 1 + (seed % 60) as usize;
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut got = 0;
        while got < want && Instant::now() < deadline {
            if let Ok(b) = rx.recv_timeout(Duration::from_millis(50)) {
                acked.push(b);
                got += 1;
            }
        }
        std::thread::sleep(Duration::from_micros(seed % 3000));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        acked.extend(rx.try_iter());
        assert!(got > 0, "iteration {it}: child made no progress");
        let attempted_up_to = acked.iter().max().copied().unwrap_or(-1) + 1;
        next = attempted_up_to + 1;
        check(d.path(), base, &acked, attempted_up_to, it);
    }
    let _ = FsyncPolicy::Always;
}

/// Every acknowledged batch is present whole; every present batch was attempted and is whole.
fn check(dir: &std::path::Path, base: i64, acked: &[i64], attempted_up_to: i64, it: usize) {
    let e = Engine::open(common::opts(dir)).unwrap();
    let mut per_batch: BTreeMap<i64, i64> = BTreeMap::new();
    for (_, ts, v) in common::scan_all(&e, "g") {
        let n = ts - base;
        assert_eq!(v, n as f64, "iteration {it}: wrong value at {ts}");
        *per_batch.entry(n / 1000).or_default() += 1;
    }
    for b in acked {
        assert_eq!(
            per_batch.get(b),
            Some(&BATCH),
            "iteration {it}: acknowledged batch {b} missing or partial"
        );
    }
    for (b, n) in &per_batch {
        assert_eq!(*n, BATCH, "iteration {it}: batch {b} partial");
        assert!(
            *b <= attempted_up_to,
            "iteration {it}: batch {b} never written"
        );
    }
    e.close().unwrap();
}
