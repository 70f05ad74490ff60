//! Shared by the `backup_*` tests: run the real `strata` binary, make data directories with the
//! engine library, and fingerprint every point of a data directory.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use strata_engine::{Engine, EngineOptions, FieldValue, Point, ScanRequest};

pub const PASSWORD: &str = "correct horse";

/// `strata` with the test password and a cheap KDF.
pub fn strata() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
    c.env("STRATA_REPO_PASSWORD", PASSWORD);
    c.env_remove("STRATA_REPO");
    c
}

pub fn run(args: &[&str]) -> Output {
    strata().args(args).output().unwrap()
}

/// Runs and asserts success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "strata {args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Runs, asserts failure with a one-line error; returns that line.
pub fn fails(args: &[&str]) -> String {
    let o = run(args);
    assert!(!o.status.success(), "strata {args:?} should fail");
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one-line error expected: {err}"
    );
    err.trim().to_string()
}

pub fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).unwrap()
}

pub fn init_repo(repo: &Path) {
    ok(&[
        "repo",
        "init",
        "--repo",
        repo.to_str().unwrap(),
        "--kdf-memory-kib",
        "256",
    ]);
}

pub fn base_ts() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now / 86_400 - 2) * 86_400 * 1_000_000_000
}

pub fn open(dir: &Path) -> Engine {
    let mut o = EngineOptions::new(dir);
    o.background = false;
    Engine::open(o).unwrap()
}

/// Writes `n` points over `hosts` series of measure `cpu` into group `g`, from `start`.
pub fn ingest(e: &Engine, group: &str, start: i64, n: usize, hosts: usize) {
    let pts: Vec<Point> = (0..n)
        .map(|i| Point {
            measure: "cpu".into(),
            tags: vec![("host".into(), format!("h{}", i % hosts))],
            fields: vec![(
                "v".into(),
                FieldValue::F64(((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64),
            )],
            timestamp: start + (i / hosts) as i64 * 1_000_000_000,
        })
        .collect();
    for c in pts.chunks(2000) {
        e.write(group, c).unwrap();
    }
}

/// A data dir with parts and some unflushed WAL, closed.
pub fn make_data(dir: &Path, points: usize) {
    let e = open(dir);
    ingest(&e, "metrics", base_ts(), points, 10);
    e.flush().unwrap();
    ingest(
        &e,
        "metrics",
        base_ts() + 3_600_000_000_000,
        points / 10,
        10,
    );
    e.close().unwrap();
}

pub fn fingerprint(dir: &Path) -> (String, usize) {
    let e = Engine::open_read_only(dir).unwrap();
    let mut h = blake3::Hasher::new();
    let mut n = 0;
    for g in e.catalog().groups {
        for m in &g.measures {
            let series = e
                .scan(&ScanRequest {
                    group: g.name.clone(),
                    measure: m.name.clone(),
                    from: i64::MIN,
                    to: i64::MAX,
                    matchers: vec![],
                    fields: None,
                })
                .unwrap();
            for s in series {
                n += s.timestamps.len();
                h.update(
                    format!(
                        "{}/{}/{:?}{:?}{:?}",
                        g.name, m.name, s.tags, s.timestamps, s.columns
                    )
                    .as_bytes(),
                );
            }
        }
    }
    (h.finalize().to_hex().to_string(), n)
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}
