//! SIGKILL `strata restore` at random moments and run it again with the same arguments: the
//! rerun reuses what the killed runs fetched and verified (it says so), the result is exact,
//! and the bytes downloaded over all the runs stay well under twice the data.
//! `STRATA_RESUME_KILLS` sets the number of kills (default 5; 20 and more by hand).
#![allow(clippy::unwrap_used)]

mod backup_support;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use backup_support::*;
use rand::Rng;

/// Every file under `dir`: path → (inode, size).
fn files(dir: &Path) -> HashMap<PathBuf, (u64, u64)> {
    let mut out = HashMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.insert(e.path(), (m.ino(), m.len()));
            }
        }
    }
    out
}

/// The fetch directory a restore into `target` keeps between runs.
fn fetch_dir(target: &Path) -> Option<PathBuf> {
    let name = format!(".{}.fetch-", target.file_name()?.to_str()?);
    std::fs::read_dir(target.parent()?)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&name))
        })
}

#[test]
fn a_killed_restore_resumes_with_what_it_fetched() {
    let kills: usize = std::env::var("STRATA_RESUME_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    init_repo(&repo);
    {
        let e = open(&data);
        for i in 0..12 {
            ingest(&e, "metrics", base_ts() + i * 3_600_000_000_000, 20_000, 50);
            e.flush().unwrap();
        }
        e.close().unwrap();
    }
    let fp = fingerprint(&data);
    let b = json(&[
        "backup",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&data),
        "--json",
    ]);
    let snapshot_bytes = b["stats"]["bytes"].as_u64().unwrap();
    let target = t.path().join("target");
    let args = [
        "restore",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&target),
        "--parallel",
        "2",
    ];

    // How long one whole restore takes here, to kill inside it.
    let started = Instant::now();
    ok(&args);
    let whole = started.elapsed();
    assert_eq!(fingerprint(&target), fp);
    std::fs::remove_dir_all(&target).unwrap();

    let mut rng = rand::rng();
    // Bytes downloaded by each chain of runs that ends in a complete restore.
    let mut chains = Vec::new();
    let mut downloaded = 0u64;
    let mut killed_with_fetch = 0;
    for _ in 0..kills {
        let before = fetch_dir(&target).map(|d| files(&d)).unwrap_or_default();
        let mut child = strata()
            .args(args)
            .arg("--json")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let ms = rng.random_range(0..whole.as_millis() as u64 * 9 / 10 + 1);
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill(); // SIGKILL
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            // Finished before the kill: this chain of runs is done; start over from nothing.
            // What the run downloaded is in its report (counting the whole snapshot instead
            // made a chain whose killed run had fetched everything read as exactly 2x, and
            // failed the bound under load).
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let got = v["result"]["fetch"]["downloaded_bytes"]
                .as_u64()
                .unwrap_or(snapshot_bytes);
            assert_eq!(fingerprint(&target), fp);
            std::fs::remove_dir_all(&target).unwrap();
            chains.push(downloaded + got);
            downloaded = 0;
            continue;
        }
        // Bytes this run downloaded: every file it created or rewrote in the fetch
        // directory (a download streams into its file; what a kill caught in memory is lost
        // and not counted: at most one frame per parallel download).
        if let Some(d) = fetch_dir(&target) {
            killed_with_fetch += 1;
            for (p, (ino, size)) in files(&d) {
                if before.get(&p).is_none_or(|(i, _)| *i != ino) {
                    downloaded += size;
                }
            }
        }
        // Killed during or after the swap: what the next run does first finishes it.
        strata_backup::restore::recover(&target).unwrap();
        if target.exists() {
            assert_eq!(fingerprint(&target), fp, "a killed swap left a mix");
            std::fs::remove_dir_all(&target).unwrap();
            chains.push(downloaded);
            downloaded = 0;
        }
    }
    // The same arguments once more, to the end.
    let out = strata().args(args).arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fetch = &v["result"]["fetch"];
    downloaded += fetch["downloaded_bytes"].as_u64().unwrap_or(0);
    assert_eq!(fingerprint(&target), fp, "the resumed restore is not exact");
    assert!(
        fetch_dir(&target).is_none(),
        "the fetch directory outlived the restore"
    );
    // A restore with nothing to resume does not claim to resume.
    let human = ok(&[
        "restore",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&t.path().join("again")),
    ]);
    assert!(!human.contains("resumed"), "{human}");
    chains.push(downloaded);
    eprintln!(
        "{kills} kills ({killed_with_fetch} mid-restore): bytes downloaded per completed restore {chains:?} for {snapshot_bytes} bytes of data"
    );
    for c in chains {
        assert!(
            c < 2 * snapshot_bytes,
            "downloaded {c} bytes over killed and resumed runs for {snapshot_bytes} bytes of data"
        );
    }
}

#[test]
fn the_rerun_says_what_it_reused() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    init_repo(&repo);
    make_data(&data, 20_000);
    let fp = fingerprint(&data);
    ok(&["backup", "--repo", s(&repo), "--data-dir", s(&data)]);
    let target = t.path().join("target");
    // What a killed run leaves: a fetch directory with some files complete and one torn.
    let plan = json(&[
        "restore",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&target),
        "--dry-run",
        "--json",
    ]);
    let fetch = PathBuf::from(plan["plan"]["fetch_dir"].as_str().unwrap());
    let scratch = t.path().join("scratch");
    ok(&["restore", "--repo", s(&repo), "--data-dir", s(&scratch)]);
    let mut torn = false;
    for obj in plan["plan"]["objects_to_fetch"].as_array().unwrap() {
        let rel = obj["path"].as_str().unwrap();
        let src = scratch.join(rel);
        if !src.exists() {
            continue;
        }
        let dst = fetch.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        let bytes = std::fs::read(&src).unwrap();
        if !torn && bytes.len() > 16 {
            std::fs::write(&dst, &bytes[..bytes.len() / 2]).unwrap();
            torn = true;
        } else {
            std::fs::write(&dst, &bytes).unwrap();
        }
    }
    assert!(torn);
    let out = ok(&["restore", "--repo", s(&repo), "--data-dir", s(&target)]);
    assert!(out.contains("resumed: reused"), "{out}");
    assert_eq!(fingerprint(&target), fp);
    assert!(!fetch.exists());
}

#[test]
fn snapshots_filter_by_node() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init_repo(&repo);
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    make_data(&a, 2_000);
    make_data(&b, 2_000);
    strata_engine::set_node_id(&a, "node-a").unwrap();
    strata_engine::set_node_id(&b, "node-b").unwrap();
    ok(&["backup", "--repo", s(&repo), "--data-dir", s(&a)]);
    ok(&["backup", "--repo", s(&repo), "--data-dir", s(&b)]);
    let all = json(&["snapshots", "--repo", s(&repo), "--json"]);
    assert_eq!(all["snapshots"].as_array().unwrap().len(), 2);
    let only_b = json(&[
        "snapshots",
        "--repo",
        s(&repo),
        "--node",
        "node-b",
        "--json",
    ]);
    let list = only_b["snapshots"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["node_id"], "node-b");
    let none = ok(&["snapshots", "--repo", s(&repo), "--node", "node-z"]);
    assert!(none.contains("0 snapshots"), "{none}");
}
