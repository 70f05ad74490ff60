//! Online restore through the real binary: `POST /api/v1/restores` and
//! `strata restore --server` import a selection of a snapshot into a running server. A new
//! group appears whole while a writer and a querier run (queries never see part of it; the
//! group equals the source queried with the same filter); a dropped group comes back;
//! `--replace` swaps whole groups; bad input is one line and changes nothing; `--dry-run`
//! plans only.
#![allow(clippy::unwrap_used)]

mod query_backup_support;
mod server_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use query_backup_support::{HOUR, base_ts, make_groups};
use reqwest::Method as M;
use serde_json::{Value, json};
use server_support::{Opts, Server, base_secs};

const PASSWORD: &str = "correct horse";

fn strata(args: &[&str]) -> (bool, String, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .env("STRATA_REPO_PASSWORD", PASSWORD)
        .env_remove("STRATA_REPO")
        .env_remove("STRATA_TOKEN")
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (good, out, err) = strata(args);
    assert!(good, "strata {args:?}: {err}");
    out
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

/// A source data directory with groups g0..g2 backed up into an initialised repository.
struct Fixture {
    _t: tempfile::TempDir,
    src: std::path::PathBuf,
    repo: String,
    live: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let t = tempfile::tempdir().unwrap();
    let (src, repo, live) = (
        t.path().join("src"),
        t.path().join("repo"),
        t.path().join("live"),
    );
    make_groups(&src, 3);
    let r = repo.to_str().unwrap().to_string();
    ok(&["repo", "init", "--repo", &r, "--kdf-memory-kib", "256"]);
    ok(&["backup", "--repo", &r, "--data-dir", src.to_str().unwrap()]);
    Fixture {
        _t: t,
        src,
        repo: r,
        live,
    }
}

fn start(f: &Fixture) -> Server {
    Server::start_with(Opts {
        args: &["--repo", &f.repo],
        env: &[("STRATA_REPO_PASSWORD", PASSWORD)],
        data_dir: Some(&f.live),
        token: None,
    })
}

/// The source data directory's answer to `q` (what the restored group must answer).
fn source(f: &Fixture, q: &Value) -> Value {
    serde_json::from_str(&ok(&[
        "query",
        "--data-dir",
        f.src.to_str().unwrap(),
        &q.to_string(),
    ]))
    .unwrap()
}

fn points(v: &Value) -> usize {
    v["series"].as_array().map_or(0, |s| {
        s.iter()
            .map(|x| x["values"].as_array().unwrap().len())
            .sum()
    })
}

fn groups(server: &Server) -> Vec<String> {
    let (_, v) = send(server, M::GET, "/api/v1/groups", None);
    let mut names: Vec<String> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Polls `GET /api/v1/restores/{id}` until the job ends.
fn wait(server: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (st, v) = send(server, M::GET, &format!("/api/v1/restores/{id}"), None);
        assert_eq!(st, 200, "{v}");
        if v["state"] != "running" {
            return v;
        }
        assert!(Instant::now() < deadline, "restore job {id} never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn into_a_new_group_while_a_writer_and_a_querier_run() {
    let f = fixture();
    let server = Arc::new(start(&f));
    let (from, to) = (base_ts() + 4 * HOUR, base_ts() + 9 * HOUR);
    let filter = json!({"group": "g0", "measure": "cpu", "where": {"dc": "dc0"},
        "from": from, "to": to});
    let want = source(&f, &filter);
    let n = points(&want);
    assert!(n > 0);

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (server, stop, written) = (server.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || {
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let body: String = (0..20)
                    .map(|k| format!("cpu,host=h{k} usage={i} {}\n", base_secs() + i * 20 + k))
                    .collect();
                server.write_ok("live", "s", &body);
                written.fetch_add(20, Ordering::Relaxed);
                i += 1;
            }
        })
    };
    let seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let querier = {
        let (server, stop, seen) = (server.clone(), stop.clone(), seen.clone());
        std::thread::spawn(move || {
            let q = json!({"group": "g0_back", "measure": "cpu"});
            while !stop.load(Ordering::Relaxed) {
                let (st, v) = server.query(&q);
                let got = if st == 200 { points(&v) } else { 0 };
                seen.lock().unwrap().insert(got);
            }
        })
    };

    let (st, v) = send(
        &server,
        M::POST,
        "/api/v1/restores",
        Some(
            json!({"groups": ["g0"], "measures": ["cpu"], "tags": {"dc": "dc0"},
            "from": from, "to": to, "into_group": "g0_back"}),
        ),
    );
    assert_eq!(st, 202, "{v}");
    assert_eq!(v["plan"]["groups"][0]["action"], "create", "{v}");
    let id = v["job"].as_str().unwrap().to_string();
    let job = wait(&server, &id);
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "restore");
    assert_eq!(
        job["detail"]["result"]["restored"]["points"], n as u64,
        "{job}"
    );
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    querier.join().unwrap();

    // Queries saw nothing of the group, then all of it.
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|&k| k == 0 || k == n),
        "a query saw part of the group: {seen:?} (whole: {n})"
    );
    assert!(seen.contains(&n), "{seen:?}");
    // The group is the source filtered, point for point; the live group lost nothing.
    assert_eq!(
        server.query_ok(&json!({"group": "g0_back", "measure": "cpu"})),
        want
    );
    let (_, mem) = server.query(&json!({"group": "g0_back", "measure": "mem"}));
    assert_eq!(points(&mem), 0, "{mem}");
    let live = server.query_ok(&json!({"group": "live", "measure": "cpu"}));
    assert_eq!(points(&live) as u64, written.load(Ordering::Relaxed));
    // The job is in the history; no password in any answer.
    let (_, jobs) = send(&server, M::GET, "/api/v1/jobs?kind=restore", None);
    assert_eq!(jobs["jobs"][0]["id"], id.as_str());
    assert!(!jobs.to_string().contains(PASSWORD));
    assert!(!job.to_string().contains(PASSWORD));
    // Nothing is left in the data directory but the data.
    assert!(!f.live.join("ADOPT").exists());
    assert!(!f.live.join("adopt").exists());
    let parent = f.live.parent().unwrap();
    let fetch_left = std::fs::read_dir(parent)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with(".live.fetch-"));
    assert!(!fetch_left, "the fetch directory was left behind");

    // Survives a restart.
    let server = Arc::try_unwrap(server).ok().unwrap();
    assert!(server.stop().success());
    let server = start(&f);
    assert_eq!(
        server.query_ok(&json!({"group": "g0_back", "measure": "cpu"})),
        want
    );
}

#[test]
fn a_dropped_group_comes_back_replace_swaps_it_and_bad_input_changes_nothing() {
    let f = fixture();
    let server = start(&f);
    let url = server.url.clone();
    let cli = |extra: &[&str]| {
        let mut args = vec!["restore", "--repo", &f.repo, "--server", &url];
        args.extend_from_slice(extra);
        strata(&args)
    };
    let whole = |g: &str, m: &str| source(&f, &json!({"group": g, "measure": m}));

    // g1 does not exist in the server (dropped): it comes back under its name, whole.
    let (good, out, err) = cli(&["--group", "g1"]);
    assert!(good, "{err}");
    assert!(out.contains("restore group g1 -> g1"), "{out}");
    assert!(out.contains("restored "), "{out}");
    for m in ["cpu", "mem"] {
        assert_eq!(
            server.query_ok(&json!({"group": "g1", "measure": m})),
            whole("g1", m)
        );
    }

    // It exists now: without --replace the restore is refused, one line, nothing changed.
    server.write_ok("g1", "s", &format!("cpu,host=new usage=1 {}", base_secs()));
    let before = server.query_ok(&json!({"group": "g1", "measure": "cpu"}));
    let (good, _, err) = cli(&["--group", "g1"]);
    assert!(!good);
    assert!(err.contains("exists") && err.contains("--replace"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(
        server.query_ok(&json!({"group": "g1", "measure": "cpu"})),
        before
    );

    // --dry-run with --server shows the plan and starts nothing.
    let (good, out, err) = cli(&["--group", "g1", "--replace", "--dry-run"]);
    assert!(good, "{err}");
    assert!(out.contains("replace group g1 -> g1"), "{out}");
    assert_eq!(
        server.query_ok(&json!({"group": "g1", "measure": "cpu"})),
        before
    );
    let (_, jobs) = send(&server, M::GET, "/api/v1/jobs?kind=restore", None);
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1, "{jobs}");

    // --replace swaps the whole group: only the snapshot's cpu remains (the new point and
    // mem are gone with the replaced group).
    let (good, _, err) = cli(&["--group", "g1", "--measure", "cpu", "--replace"]);
    assert!(good, "{err}");
    assert_eq!(
        server.query_ok(&json!({"group": "g1", "measure": "cpu"})),
        whole("g1", "cpu")
    );
    let (_, mem) = server.query(&json!({"group": "g1", "measure": "mem"}));
    assert_eq!(points(&mem), 0, "{mem}");

    // Bad input: one line, exit non-zero, nothing changed.
    let names = groups(&server);
    for (args, what) in [
        (vec!["--group", "g0", "--into-group", "g1"], "exists"),
        (vec!["--into-group", "x"], "takes one group"),
        (vec!["--group", "nope"], "not in snapshot"),
        (vec!["--group", "g0", "--measure", "disk"], "measure 'disk'"),
        (
            vec!["--group", "g0", "--into-group", "bad/name"],
            "--into-group",
        ),
        (
            vec![
                "--group",
                "g0",
                "--from",
                "2026-01-02T00:00:00Z",
                "--to",
                "2026-01-01T00:00:00Z",
            ],
            "--from",
        ),
        (
            vec!["--group", "g2", "--into-group", "x", "--tag", "host=nobody"],
            "matches no data",
        ),
        (vec!["--snapshot", "ffffffff", "--group", "g0"], "not found"),
    ] {
        let (good, _, err) = cli(&args);
        assert!(!good, "{args:?} succeeded");
        assert!(err.contains(what), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert_eq!(groups(&server), names, "{args:?} changed the groups");
    }
    // Flags that make no sense online are refused by the CLI itself.
    let (good, _, err) = cli(&["--force"]);
    assert!(!good && err.contains("--force"), "{err}");

    // An unknown restore and a finished one cannot be cancelled; a bad body is a 400.
    let (st, _) = send(&server, M::DELETE, "/api/v1/restores/restore-999", None);
    assert_eq!(st, 404);
    let (st, v) = send(
        &server,
        M::POST,
        "/api/v1/restores",
        Some(json!({"password": "x"})),
    );
    assert_eq!(st, 400, "{v}");
    assert!(!f.live.join("adopt").exists());
}

#[test]
fn a_cancelled_restore_changes_nothing() {
    let f = fixture();
    let server = start(&f);
    let (st, v) = send(
        &server,
        M::POST,
        "/api/v1/restores",
        Some(json!({"into_group": "copy", "groups": ["g2"]})),
    );
    assert_eq!(st, 202, "{v}");
    let id = v["job"].as_str().unwrap().to_string();
    let (st, c) = send(&server, M::DELETE, &format!("/api/v1/restores/{id}"), None);
    let job = wait(&server, &id);
    if st == 202 && job["state"] == "cancelled" {
        assert!(!groups(&server).contains(&"copy".to_string()));
        assert!(
            job["error"].as_str().unwrap().contains("cancelled"),
            "{job}"
        );
    } else {
        // The restore was faster than the cancel: then it is whole.
        assert_eq!(job["state"], "succeeded", "{c} {job}");
        assert_eq!(
            server.query_ok(&json!({"group": "copy", "measure": "cpu"})),
            source(&f, &json!({"group": "g2", "measure": "cpu"}))
        );
    }
    assert!(!f.live.join("adopt").exists());
}
