//! Continuous archiving and `restore --at`: a server archiving under a steady write load is
//! SIGKILLed and its data directory deleted; restores to several instants give exactly the
//! batches acknowledged before each instant (no more, no fewer), the newest recoverable point
//! is within 1 s of the last acknowledgement, and bad `--at` values are refused with one line
//! and nothing written.
#![allow(clippy::unwrap_used)]

mod backup_support;
#[path = "server_support/mod.rs"]
mod server_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backup_support::{PASSWORD, fails, init_repo, json, ok, s};
use server_support::{Opts, Server, base_secs};
use strata_engine::{Engine, ScanRequest};

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The batch numbers (field `i`) a data directory holds, sorted.
fn batches(dir: &std::path::Path) -> Vec<i64> {
    let e = Engine::open_read_only(dir).unwrap();
    let series = e
        .scan(&ScanRequest {
            group: "pitr".into(),
            measure: "load".into(),
            from: i64::MIN,
            to: i64::MAX,
            matchers: vec![],
            fields: None,
        })
        .unwrap();
    let mut out = Vec::new();
    for s in series {
        for (_, col) in &s.columns {
            if let strata_engine::Column::I64(v) = col {
                out.extend(v.iter().flatten().copied());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn restore_at_gives_exactly_the_batches_acknowledged_before_the_instant() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    init_repo(&repo);
    let server = Server::start_with(Opts {
        // Frequent flushes: the WAL the archive still needs must survive them.
        args: &["--repo", s(&repo), "--archive", "--idle-flush", "100ms"],
        env: &[("STRATA_REPO_PASSWORD", PASSWORD)],
        data_dir: Some(&data),
        token: None,
    });
    // The archiver starts its chain with a snapshot; wait for it.
    let mut started = false;
    for _ in 0..300 {
        let m = server
            .request(reqwest::Method::GET, "/metrics")
            .send()
            .unwrap()
            .text()
            .unwrap();
        if m.lines()
            .any(|l| l.starts_with("strata_archive_window_start_seconds ") && !l.ends_with(" 0"))
        {
            assert!(m.contains("strata_archive_lag_seconds"), "{m}");
            started = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        started,
        "archive chain never started: {}",
        server.log_text()
    );
    let base = base_secs();
    // (sent, acknowledged) per batch; batches are one point each, 20 ms apart.
    let mut times: Vec<(i64, i64)> = Vec::new();
    let until = now_ns() + 3_000_000_000;
    let mut i = 0i64;
    let mut job: Option<String> = None;
    while now_ns() < until {
        if job.is_none() && now_ns() > until - 1_500_000_000 {
            // A backup in the middle of the load: a second snapshot inside the window.
            let r = server
                .request(reqwest::Method::POST, "/api/v1/backups")
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 202);
            let v: serde_json::Value = r.json().unwrap();
            job = Some(v["status"].as_str().unwrap().to_string());
        }
        let sent = now_ns();
        server.write_ok("pitr", "s", &format!("load,host=h v={i}i {}\n", base + i));
        times.push((sent, now_ns()));
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let last_ack = times.last().unwrap().1;
    let job = job.unwrap();
    let mut mid_snapshot = String::new();
    for _ in 0..600 {
        let v: serde_json::Value = server
            .request(reqwest::Method::GET, &job)
            .send()
            .unwrap()
            .json()
            .unwrap();
        if v["state"] == "succeeded" {
            mid_snapshot = v["snapshot"].as_str().unwrap().to_string();
            break;
        }
        assert_ne!(v["state"], "failed", "{v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!mid_snapshot.is_empty(), "the backup job did not finish");
    // Let the archiver run its round, as a steady load would; then a hard crash.
    std::thread::sleep(Duration::from_millis(300));
    drop(server); // SIGKILL
    std::fs::remove_dir_all(&data).unwrap();

    let snaps = json(&["snapshots", "--repo", s(&repo), "--json"]);
    let windows = snaps["pitr"]["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 1, "{snaps}");
    let end = windows[0]["end_ns"].as_i64().unwrap();
    let start = windows[0]["start_ns"].as_i64().unwrap();
    assert!(
        end >= last_ack - 1_000_000_000,
        "recovery point {} is more than 1 s before the last acknowledgement {}",
        rfc3339(end),
        rfc3339(last_ack)
    );
    let n = times.len();
    assert!(n > 20, "only {n} batches");
    // Instants between an acknowledgement and the next send.
    for k in [0, n / 4, n / 2, n - 10, n - 2] {
        let at = (times[k].1 + times[k + 1].0) / 2;
        if at < start {
            continue;
        }
        let dest = t.path().join(format!("restored-{k}"));
        let plan = json(&[
            "restore",
            "--repo",
            s(&repo),
            "--data-dir",
            s(&dest),
            "--at",
            &rfc3339(at),
            "--dry-run",
            "--json",
        ]);
        assert!(!dest.exists(), "a dry run wrote {}", dest.display());
        let pitr = &plan["plan"]["point_in_time"];
        assert!(pitr["snapshot"].is_string(), "{plan}");
        ok(&[
            "restore",
            "--repo",
            s(&repo),
            "--data-dir",
            s(&dest),
            "--at",
            &rfc3339(at),
        ]);
        let want: Vec<i64> = (0..=k as i64).collect();
        assert_eq!(batches(&dest), want, "restore --at after batch {k}");
        // Time travel without restoring: the backup queried as of that instant answers what
        // the restored directory answers.
        let q = r#"{"group":"pitr","measure":"load"}"#;
        let in_place = json(&["query", "--repo", s(&repo), "--at", &rfc3339(at), q]);
        assert_eq!(
            in_place,
            json(&["query", "--data-dir", s(&dest), q]),
            "query --at after batch {k}"
        );
    }
    // The newest point: everything archived, nothing after the window.
    let dest = t.path().join("restored-end");
    ok(&[
        "restore",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&dest),
        "--at",
        &rfc3339(end),
    ]);
    let got = batches(&dest);
    let acked_by_end = times.iter().filter(|(_, a)| *a <= end).count() as i64;
    assert!(
        got.len() as i64 >= acked_by_end,
        "{} < {acked_by_end}",
        got.len()
    );
    assert_eq!(
        got,
        (0..got.len() as i64).collect::<Vec<_>>(),
        "a prefix of the batches"
    );

    // Rollback: the same point written for the previous release (WAL format 1).
    let v1 = t.path().join("restored-v1");
    ok(&[
        "restore",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&v1),
        "--at",
        &rfc3339(end),
        "--format-version",
        "1",
    ]);
    for f in std::fs::read_dir(v1.join("wal")).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert_eq!(
            &bytes[8..12],
            &1u32.to_le_bytes(),
            "a v2 WAL segment in a v1 restore"
        );
    }
    // Parts too: the previous release reads part format 1 only (index.bin frame version 1).
    let mut indexes = 0;
    let mut stack = vec![v1.join("data")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() == "index.bin" {
                let bytes = std::fs::read(&p).unwrap();
                assert_eq!(
                    &bytes[8..12],
                    &1u32.to_le_bytes(),
                    "a v2 part in a v1 restore: {p:?}"
                );
                indexes += 1;
            }
        }
    }
    assert!(indexes > 0, "the test needs parts in the snapshot");
    assert_eq!(batches(&v1), got);
    let bad_v = t.path().join("bad-version");
    let e = fails(&[
        "restore",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&bad_v),
        "--at",
        &rfc3339(end),
        "--format-version",
        "3",
    ]);
    assert!(e.contains("--format-version 3"), "{e}");
    assert!(!bad_v.exists());

    // Retention: keep only the newest snapshot; the archive before its cut goes, the window
    // now starts at it, and a restore inside it is still exact.
    ok(&[
        "prune",
        "--repo",
        s(&repo),
        "--keep-last",
        "1",
        "--grace",
        "0s",
    ]);
    let snaps = json(&["snapshots", "--repo", s(&repo), "--json"]);
    let ids: Vec<&str> = snaps["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![mid_snapshot.as_str()]);
    let w = &snaps["pitr"]["windows"][0];
    assert!(w["start_ns"].as_i64().unwrap() > start, "{snaps}");
    assert_eq!(
        w["end_ns"].as_i64().unwrap(),
        end,
        "the window still ends at the last commit"
    );
    let k = n - 2;
    let at = (times[k].1 + times[k + 1].0) / 2;
    let dest = t.path().join("restored-after-prune");
    ok(&[
        "restore",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&dest),
        "--at",
        &rfc3339(at),
    ]);
    assert_eq!(batches(&dest), (0..=k as i64).collect::<Vec<_>>());
    let before = (times[0].1 + times[1].0) / 2;
    let e = fails(&[
        "restore",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&dest),
        "--at",
        &rfc3339(before),
        "--force",
    ]);
    assert!(e.contains("outside the point-in-time window"), "{e}");

    // Bad input: one clear line each, nothing written.
    let bad = t.path().join("bad");
    for (at, says) in [
        ("yesterday-ish", "--at 'yesterday-ish'"),
        (&*rfc3339(now_ns() + 3_600_000_000_000), "in the future"),
        (
            &*rfc3339(start - 3_600_000_000_000),
            "outside the point-in-time window",
        ),
    ] {
        let e = fails(&[
            "restore",
            "--repo",
            s(&repo),
            "--data-dir",
            s(&bad),
            "--at",
            at,
        ]);
        assert!(e.contains(says), "--at {at}: {e}");
        assert!(!bad.exists());
        let e = fails(&[
            "query",
            "--repo",
            s(&repo),
            "--at",
            at,
            r#"{"group":"pitr","measure":"load"}"#,
        ]);
        assert!(e.contains(says), "query --at {at}: {e}");
    }
}
