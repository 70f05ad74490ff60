//! SIGKILL `strata backup` and `strata restore` at random moments, many times: every completed
//! snapshot still verifies, the next backup completes, and the target is the old or the new
//! data directory, never a mix.
#![allow(clippy::unwrap_used)]

mod backup_support;

use std::time::Duration;

use backup_support::*;
use rand::Rng;

fn kill_after(mut cmd: std::process::Command, ms: u64) -> bool {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    finished
}

#[test]
fn sigkill_during_backup_leaves_a_consistent_repository() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    make_data(&data, 30_000);
    init_repo(&repo);
    let mut rng = rand::rng();
    for i in 0..10 {
        // Add a little data each round so there is always something to upload.
        {
            let e = open(&data);
            ingest(
                &e,
                "metrics",
                base_ts() + (i + 2) * 3_600_000_000_000,
                2000,
                10,
            );
            e.flush().unwrap();
            e.close().unwrap();
        }
        let mut c = strata();
        c.args(["backup", "--repo", s(&repo), "--data-dir", s(&data)]);
        kill_after(c, rng.random_range(0..400));
        // Every snapshot that exists is complete.
        ok(&["verify", "--repo", s(&repo), "--all", "--read-data"]);
    }
    ok(&["backup", "--repo", s(&repo), "--data-dir", s(&data)]);
    ok(&["verify", "--repo", s(&repo), "--read-data"]);
    let fp = fingerprint(&data);
    let out = t.path().join("out");
    ok(&["restore", "--repo", s(&repo), "--data-dir", s(&out)]);
    assert_eq!(fingerprint(&out), fp);
}

#[test]
fn sigkill_during_restore_leaves_old_or_new() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    init_repo(&repo);
    make_data(&data, 5_000);
    let old_fp = fingerprint(&data);
    let a = json(&[
        "backup",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&data),
        "--json",
    ]);
    {
        let e = open(&data);
        ingest(&e, "metrics", base_ts() + 7_200_000_000_000, 30_000, 10);
        e.close().unwrap();
    }
    let new_fp = fingerprint(&data);
    assert_ne!(old_fp, new_fp);
    json(&[
        "backup",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&data),
        "--json",
    ]);

    let target = t.path().join("target");
    ok(&[
        "restore",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&target),
        "--snapshot",
        a["snapshot"].as_str().unwrap(),
    ]);
    let mut rng = rand::rng();
    let mut saw_new = false;
    for _ in 0..10 {
        let mut c = strata();
        c.args([
            "restore",
            "--repo",
            s(&repo),
            "--data-dir",
            s(&target),
            "--force",
        ]);
        kill_after(c, rng.random_range(0..600));
        // What `strata restore` and `strata server` do first: finish an interrupted swap.
        strata_backup::restore::recover(&target).unwrap();
        let fp = fingerprint(&target);
        assert!(
            fp == old_fp || fp == new_fp,
            "target is neither the old nor the new data"
        );
        saw_new |= fp == new_fp;
    }
    ok(&[
        "restore",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&target),
        "--force",
    ]);
    assert_eq!(fingerprint(&target), new_fp);
    let _ = saw_new;
}
