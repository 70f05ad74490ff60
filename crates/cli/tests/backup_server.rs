//! Backups of a running server: `strata backup --server` while writers keep writing (the
//! restored data is exactly whole acknowledged batches, at least every batch acknowledged before
//! the backup started), and the server's backup job API.
#![allow(clippy::unwrap_used)]

mod backup_support;
#[path = "server_support/mod.rs"]
mod server_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use backup_support::{PASSWORD, fingerprint, init_repo, json, ok, s};
use server_support::{Opts, Server, base_secs};

const BATCH: usize = 50;

#[test]
fn backup_under_load_and_backup_jobs() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    init_repo(&repo);
    let server = Arc::new(Server::start_with(Opts {
        args: &["--repo", s(&repo)],
        env: &[("STRATA_REPO_PASSWORD", PASSWORD)],
        data_dir: Some(&data),
        token: None,
    }));
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (server, acked, stop) = (server.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let base = base_secs();
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) && i < 400 {
                let body: String = (0..BATCH)
                    .map(|j| {
                        format!(
                            "load,host=h{} v={}i {}\n",
                            j % 5,
                            i * BATCH + j,
                            base + (i * BATCH + j) as i64
                        )
                    })
                    .collect();
                server.write_ok("load", "s", &body);
                i += 1;
                acked.store(i, Ordering::SeqCst);
            }
        })
    };
    while acked.load(Ordering::SeqCst) < 20 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = acked.load(Ordering::SeqCst);
    let b = json(&[
        "backup",
        "--repo",
        s(&repo),
        "--server",
        &server.url,
        "--json",
    ]);
    let after = acked.load(Ordering::SeqCst);
    let snap = b["snapshot"].as_str().unwrap().to_string();

    // The job API does the same in-process.
    let r = server
        .request(reqwest::Method::POST, "/api/v1/backups")
        .json(&serde_json::json!({"labels": {"via": "api"}}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let job: serde_json::Value = r.json().unwrap();
    let status_url = job["status"].as_str().unwrap().to_string();
    let mut last = serde_json::Value::Null;
    for _ in 0..600 {
        last = server
            .request(reqwest::Method::GET, &status_url)
            .send()
            .unwrap()
            .json()
            .unwrap();
        if last["state"] != "running" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(
        last["progress"]["files_total"].as_u64().unwrap() > 0,
        "{last}"
    );
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let listed: serde_json::Value = server
        .request(reqwest::Method::GET, "/api/v1/backups")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 2, "{listed}");
    let missing = server
        .request(reqwest::Method::GET, "/api/v1/jobs/nope")
        .send()
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    // The CLI snapshot holds whole batches: everything acknowledged before it started, and
    // nothing that was not acknowledged by the time it finished.
    let out = t.path().join("restored");
    ok(&[
        "restore",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&out),
        "--snapshot",
        &snap,
    ]);
    let (_, points) = fingerprint(&out);
    assert_eq!(points % BATCH, 0, "a batch was split: {points}");
    assert!(
        points >= before * BATCH,
        "lost acknowledged writes: {points} < {}",
        before * BATCH
    );
    assert!(points <= after * BATCH, "{points} > {}", after * BATCH);
    let server = Arc::try_unwrap(server).ok().unwrap();
    assert!(server.stop().success());
}
