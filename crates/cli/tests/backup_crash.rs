//! SIGKILL `strata backup` and `strata restore` at random moments, many times: every completed
//! snapshot still verifies, the next backup completes, and the target is the old or the new
//! data directory, never a mix. SIGKILL a server holding a live snapshot pin: the restarted
//! server keeps every file the snapshot lists until it is released.
#![allow(clippy::unwrap_used)]

mod backup_support;
#[path = "server_support/mod.rs"]
mod server_support;

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

/// Writes one batch, then takes and releases a snapshot (a flush: one more part).
fn flush_round(server: &server_support::Server, i: i64) {
    let base = server_support::base_secs();
    let body: String = (0..50)
        .map(|j| format!("m,host=h{} v={}i {}\n", j % 5, j, base + i * 100 + j))
        .collect();
    server.write_ok("g", "s", &body);
    let snap: serde_json::Value = server
        .request(reqwest::Method::POST, "/api/v1/snapshots")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = snap["id"].as_str().unwrap();
    let r = server
        .request(reqwest::Method::DELETE, &format!("/api/v1/snapshots/{id}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_server_killed_with_a_live_pin_keeps_the_pinned_files() {
    use server_support::Server;
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let server = Server::start(&data);
    for i in 0..12 {
        flush_round(&server, i);
    }
    let doc: serde_json::Value = server
        .request(reqwest::Method::POST, "/api/v1/snapshots")
        .send()
        .unwrap()
        .json()
        .unwrap();
    // More flushes: background merges fold the pinned parts into new ones.
    for i in 12..24 {
        flush_round(&server, i);
    }
    drop(server); // SIGKILL, the pin still live
    let server = Server::start(&data);
    let files = doc["files"].as_array().unwrap();
    let tree = t.path().join("pinned");
    for f in files {
        let to = tree.join(f["path"].as_str().unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let bytes = match f["local_path"].as_str() {
            Some(p) => std::fs::read(p)
                .unwrap_or_else(|e| panic!("the restart deleted pinned file {p}: {e}")),
            None => unhex(f["inline_hex"].as_str().unwrap()),
        };
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            f["digest"].as_str().unwrap()
        );
        std::fs::write(&to, bytes).unwrap();
    }
    // The snapshot still reads as of its cut: the first 12 batches.
    let (_, points) = fingerprint(&tree);
    assert_eq!(points, 12 * 50);
    let id = doc["id"].as_str().unwrap();
    let r = server
        .request(reqwest::Method::DELETE, &format!("/api/v1/snapshots/{id}"))
        .send()
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        204,
        "the pin did not survive the restart"
    );
    assert!(server.stop().success());
}
