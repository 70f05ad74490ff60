//! Attachments: a backup snapshot mounted read-only into a running server answers queries
//! like any group, is listed read-only, refuses writes, detaches, and comes back after a
//! restart only when the config file names it.
#![allow(clippy::unwrap_used)]

mod query_backup_support;
mod server_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use query_backup_support::{make_groups, random_query, tree_state};
use reqwest::Method as M;
use serde_json::{Value, json};
use server_support::{Opts, Server, base_secs};

const PASSWORD: &str = "correct horse";

fn strata(args: &[&str]) -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .env("STRATA_REPO_PASSWORD", PASSWORD)
        .env_remove("STRATA_REPO")
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "strata {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn send(server: &Server, method: M, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = server.request(method, path);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn start(data: &std::path::Path, args: &[&str]) -> Server {
    Server::start_with(Opts {
        args,
        env: &[("STRATA_REPO_PASSWORD", PASSWORD)],
        data_dir: Some(data),
        token: None,
    })
}

#[test]
fn an_attached_snapshot_answers_like_its_restore_refuses_writes_and_detaches() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo, restored) = (
        t.path().join("src"),
        t.path().join("repo"),
        t.path().join("restored"),
    );
    make_groups(&src, 3);
    let r = repo.to_str().unwrap();
    strata(&["repo", "init", "--repo", r, "--kdf-memory-kib", "256"]);
    strata(&["backup", "--repo", r, "--data-dir", src.to_str().unwrap()]);
    strata(&[
        "restore",
        "--repo",
        r,
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    let before = tree_state(&repo);

    let live = t.path().join("live");
    let server = Arc::new(start(&live, &[]));
    // Ingest into a live group the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let ingest = {
        let (server, stop, written) = (server.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || {
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let body: String = (0..50)
                    .map(|k| format!("cpu,host=h{k} usage={i} {}\n", base_secs() + i * 50 + k))
                    .collect();
                server.write_ok("live", "s", &body);
                written.fetch_add(50, Ordering::Relaxed);
                i += 1;
            }
        })
    };

    let (st, made) = send(
        &server,
        M::POST,
        "/api/v1/attachments",
        Some(json!({"repo": r, "snapshot": "latest", "groups": ["g0", "g2"], "as": "old_"})),
    );
    assert_eq!(st, 201, "{made}");
    assert_eq!(made["groups"], json!({"old_g0": "g0", "old_g2": "g2"}));
    assert_eq!(made["read_only"], true);

    // Queries answer as the restored data does, while ingest goes on.
    for seed in 0..16 {
        let mut q = random_query(seed, 3);
        let g = if seed % 2 == 0 { "g0" } else { "g2" };
        q["group"] = g.into();
        let want: Value = serde_json::from_str(&strata(&[
            "query",
            "--data-dir",
            restored.to_str().unwrap(),
            &q.to_string(),
        ]))
        .unwrap();
        q["group"] = format!("old_{g}").into();
        assert_eq!(server.query_ok(&q), want, "{q}");
    }
    // InfluxQL sees the attached group too.
    let (st, v) = send(
        &server,
        M::GET,
        "/query?db=old_g0&q=SELECT%20count(usage)%20FROM%20cpu",
        None,
    );
    assert_eq!(st, 200, "{v}");
    assert!(
        v["results"][0]["series"][0]["values"][0][1]
            .as_u64()
            .unwrap()
            > 0,
        "{v}"
    );

    // Listed read-only beside the live groups.
    let (_, groups) = send(&server, M::GET, "/api/v1/groups", None);
    let names: Vec<(String, bool)> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_string(),
                g["read_only"] == true,
            )
        })
        .collect();
    assert!(names.contains(&("old_g0".into(), true)), "{groups}");
    assert!(names.contains(&("old_g2".into(), true)), "{groups}");
    assert!(names.contains(&("live".into(), false)), "{groups}");
    assert!(!names.iter().any(|(n, _)| n == "old_g1"), "{groups}");

    // Writes and settings changes are refused, clearly.
    let (st, text) = server.write(
        "old_g0",
        "s",
        &format!("cpu,host=x usage=1 {}", base_secs()),
    );
    assert_eq!(st, 403, "{text}");
    assert!(text.contains("read-only"), "{text}");
    let (st, v) = send(
        &server,
        M::PUT,
        "/api/v1/groups/old_g0",
        Some(json!({"ttl": "1d"})),
    );
    assert_eq!(st, 403, "{v}");
    let (st, v) = send(&server, M::DELETE, "/api/v1/groups/old_g0", None);
    assert_eq!(st, 403, "{v}");

    // Bad attachments: a name taken, a group the snapshot lacks, an unknown snapshot.
    let (st, v) = send(
        &server,
        M::POST,
        "/api/v1/attachments",
        Some(json!({"repo": r, "groups": ["g0"], "as": "old_"})),
    );
    assert_eq!(st, 409, "{v}");
    let (st, v) = send(
        &server,
        M::POST,
        "/api/v1/attachments",
        Some(json!({"repo": r, "groups": ["nope"], "as": "x_"})),
    );
    assert_eq!(st, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("no group 'nope'"),
        "{v}"
    );
    let (st, v) = send(
        &server,
        M::POST,
        "/api/v1/attachments",
        Some(json!({"repo": r, "snapshot": "ffffffffffffffff", "groups": ["g0"], "as": "y_"})),
    );
    assert_eq!(st, 404, "{v}");
    let (st, v) = send(
        &server,
        M::POST,
        "/api/v1/attachments",
        Some(json!({"repo": r, "groups": ["g0"], "as": ".hidden"})),
    );
    assert_eq!(st, 400, "{v}");

    // Detach: the groups are gone.
    let (st, v) = send(&server, M::DELETE, "/api/v1/attachments/old_", None);
    assert_eq!(st, 204, "{v}");
    let (st, _) = server.query(&json!({"group": "old_g0", "measure": "cpu"}));
    assert_eq!(st, 404);
    let (st, _) = send(&server, M::DELETE, "/api/v1/attachments/old_", None);
    assert_eq!(st, 404);

    stop.store(true, Ordering::Relaxed);
    ingest.join().unwrap();
    // Every acknowledged live point is there.
    let v = server.query_ok(
        &json!({"group": "live", "measure": "cpu", "agg": {"fn": "count"}, "fields": ["usage"]}),
    );
    let total: u64 = v["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["values"][0][1].as_u64().unwrap())
        .sum();
    assert_eq!(total, written.load(Ordering::Relaxed));
    assert_eq!(tree_state(&repo), before, "the repository changed");

    // An API attachment does not survive a restart; a configured one does.
    let server = Arc::try_unwrap(server).ok().unwrap();
    send(
        &server,
        M::POST,
        "/api/v1/attachments",
        Some(json!({"repo": r, "groups": ["g1"], "as": "tmp_"})),
    );
    assert!(server.stop().success());
    let server = start(&live, &[]);
    let (st, _) = server.query(&json!({"group": "tmp_g1", "measure": "cpu"}));
    assert_eq!(st, 404);
    assert!(server.stop().success());
    let config = t.path().join("strata.toml");
    std::fs::write(
        &config,
        format!("[[attachment]]\nas = \"cfg_\"\nrepo = \"{r}\"\ngroups = [\"g1\"]\n"),
    )
    .unwrap();
    let server = start(&live, &["--config", config.to_str().unwrap()]);
    let q = json!({"group": "cfg_g1", "measure": "mem", "agg": {"fn": "max"}, "fields": ["free"], "group_by": ["host"]});
    let mut want = q.clone();
    want["group"] = "g1".into();
    let want: Value = serde_json::from_str(&strata(&[
        "query",
        "--data-dir",
        restored.to_str().unwrap(),
        &want.to_string(),
    ]))
    .unwrap();
    assert_eq!(server.query_ok(&q), want);
    let (_, list) = send(&server, M::GET, "/api/v1/attachments", None);
    assert_eq!(list["attachments"][0]["configured"], true, "{list}");
    assert!(server.stop().success());
}
