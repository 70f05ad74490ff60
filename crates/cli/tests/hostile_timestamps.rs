//! Extreme timestamps through the real binary (issue 18, item 1).
//!
//! - Every write endpoint, at every precision, refuses a point outside the valid range with a
//!   400 naming its line, and writes nothing of the batch.
//! - A data directory written by an older build that already holds the poison point
//!   (`i64::MAX` ns in the WAL, `i64::MAX - 1` in a part: `tests/fixtures/poison-i64-max`,
//!   made with the server of 8dd9426) opens, takes writes, flushes, merges, shuts down on
//!   SIGTERM, passes `strata check`, backs up and restores. Before the fix the first flush
//!   looped forever, allocating hundreds of MB/s, and so did `strata backup --data-dir`.
#![allow(clippy::unwrap_used)]

mod server_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use server_support::*;

/// 1678-01-01 and 2261-12-31T23:59:59.999999999 UTC in ns (strata_engine::model).
const MIN_TS: i64 = -9_214_560_000_000_000_000;
const MAX_TS: i64 = 9_214_646_399_999_999_999;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Run `strata` and fail (killing it) if it does not finish within `secs`: the defect was a
/// command that never finished.
fn strata_within(secs: u64, args: &[&str]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env_remove("STRATA_REPO_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return (status.success(), text);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("strata {args:?} still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn metric(s: &Server, name: &str) -> f64 {
    let text = s
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn out_of_range_timestamps_are_refused_on_every_endpoint_and_precision() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let good = base_secs();
    // (url, precision spelling, ns per unit)
    let mut cases = Vec::new();
    for (p1, p2, n) in [
        ("ns", "n", 1i64),
        ("us", "u", 1_000),
        ("ms", "ms", 1_000_000),
        ("s", "s", 1_000_000_000),
    ] {
        cases.push((format!("/api/v1/write?group=g&precision={p1}"), n));
        cases.push((format!("/write?db=g&precision={p2}"), n));
        cases.push((format!("/api/v2/write?bucket=g&precision={p1}"), n));
    }
    for (url, n) in &cases {
        for bad in [i64::MAX, i64::MIN, MAX_TS / n + 1, MIN_TS / n - 1] {
            let ok = good * 1_000_000_000 / n;
            let body = format!("ok x=1 {ok}\nm,h=a x=1 {bad}\n");
            let r = s
                .request(reqwest::Method::POST, url)
                .body(body)
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 400, "{url} {bad}");
            let v: serde_json::Value = r.json().unwrap();
            assert_eq!(v["line"], 2, "{url} {bad}: {v}");
            let msg = v["error"].as_str().unwrap();
            assert!(msg.contains("valid range"), "{url}: {msg}");
        }
    }
    // Nothing of any refused batch was written.
    let (status, _) = s.query(&json!({"group": "g", "measure": "ok"}));
    assert_eq!(status, 404, "a refused batch created its group");
    // The end of the range itself is accepted (the start is, too, but a group's TTL cannot
    // reach that far back: it is refused as expired).
    s.write_ok("g", "ns", &format!("m x=1 {MAX_TS}\n"));
}

#[test]
fn remote_write_refuses_out_of_range_timestamps() {
    use strata_prompb::{Label, Message, Sample, TimeSeries, WriteRequest};
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    for ms in [i64::MAX, i64::MAX / 1_000_000, MIN_TS / 1_000_000 - 1] {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![
                    Sample {
                        value: 1.0,
                        timestamp: base_secs() * 1000,
                    },
                    Sample {
                        value: 2.0,
                        timestamp: ms,
                    },
                ],
            }],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap();
        let r = s
            .request(reqwest::Method::POST, "/api/v1/prom/write?group=p")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{ms}");
        assert!(r.text().unwrap().contains("valid range"));
    }
}

#[test]
fn a_data_dir_holding_the_poison_point_opens_flushes_backs_up_and_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/poison-i64-max");
    copy_dir(&fixture, &data);
    let s = Server::start_with(Opts {
        args: &["--idle-flush", "200ms"],
        env: &[],
        data_dir: Some(&data),
        token: None,
    });
    let parts_before = metric(&s, "strata_parts");
    // The next ordinary write and the idle flush after it: this is where the server ran away.
    s.write_ok("g", "s", "m,host=c x=7 1767225720\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&s, "strata_parts") <= parts_before {
        assert!(Instant::now() < deadline, "the idle flush never finished");
        std::thread::sleep(Duration::from_millis(100));
    }
    let v = s.query_ok(&json!({"group": "g", "measure": "m", "agg": {"fn": "count"}}));
    // x=5, x=6, x=7, and x=1 at i64::MAX - 1; the point at i64::MAX lies past every
    // query's exclusive end but is kept.
    assert_eq!(only_rows(&v)[0][1], 4, "{v}");
    assert!(s.stop().success(), "SIGTERM did not shut down cleanly");

    let d = data.to_str().unwrap();
    let (ok, out) = strata_within(60, &["check", "--data-dir", d]);
    assert!(ok, "{out}");
    let repo = tmp.path().join("repo");
    let r = repo.to_str().unwrap();
    let (ok, out) = strata_within(60, &["repo", "init", "--repo", r, "--encryption", "none"]);
    assert!(ok, "{out}");
    let (ok, out) = strata_within(60, &["backup", "--repo", r, "--data-dir", d]);
    assert!(ok, "backup: {out}");
    let restored = tmp.path().join("restored");
    let rd = restored.to_str().unwrap();
    let (ok, out) = strata_within(60, &["restore", "--repo", r, "--data-dir", rd]);
    assert!(ok, "restore: {out}");
    let q = r#"{"group":"g","measure":"m","agg":{"fn":"count"}}"#;
    let (ok, out) = strata_within(60, &["query", "--data-dir", rd, q]);
    assert!(ok, "query of the restored dir: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(only_rows(&v)[0][1], 4, "{v}");
}
