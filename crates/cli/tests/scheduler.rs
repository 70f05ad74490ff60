//! The server as a backup manager, through the real binary and its config file: a seconds
//! cron schedule of the hot tier with keep-last 3, a space-triggered schedule of the cold
//! tier, the jobs history (across a restart), the schedules API, the metrics, and start-up
//! refusals of bad schedules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use server_support::*;
use strata_engine::{Engine, EngineOptions, GroupSettings};

const PASSWORD: &str = "scheduler test";

fn init_repo(repo: &Path) {
    let out = std::process::Command::new(BIN)
        .env("STRATA_REPO_PASSWORD", PASSWORD)
        .args([
            "repo",
            "init",
            "--repo",
            repo.to_str().unwrap(),
            "--kdf-memory-kib",
            "256",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A data directory with groups `hot` (tier hot) and `cold` (tier cold).
fn make_tiers(dir: &Path) {
    let e = Engine::open(EngineOptions::new(dir)).unwrap();
    for (g, tier) in [("hot", "hot"), ("cold", "cold")] {
        let s = GroupSettings {
            backup_tier: tier.into(),
            ..GroupSettings::default()
        };
        e.put_group(g, s).unwrap();
    }
    e.close().unwrap();
}

fn get(server: &Server, path: &str) -> Value {
    server
        .request(reqwest::Method::GET, path)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn metrics(server: &Server) -> String {
    server
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .unwrap()
        .text()
        .unwrap()
}

/// The value of one sample line of the exposition, e.g. `strata_backup_runs_total{schedule="hot"}`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// Snapshots of the repository by schedule, from `strata snapshots --json`.
fn snapshots(repo: &Path) -> Vec<Value> {
    let out = std::process::Command::new(BIN)
        .env("STRATA_REPO_PASSWORD", PASSWORD)
        .args(["snapshots", "--repo", repo.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["snapshots"].as_array().unwrap().clone()
}

fn of(snaps: &[Value], schedule: &str) -> Vec<Value> {
    snaps
        .iter()
        .filter(|s| s["schedule"] == schedule)
        .cloned()
        .collect()
}

fn start(data: &Path, config: &Path) -> Server {
    Server::start_with(Opts {
        args: &["--config", config.to_str().unwrap()],
        env: &[("STRATA_REPO_PASSWORD", PASSWORD)],
        data_dir: Some(data),
        token: None,
    })
}

fn lines(group: &str, from: i64, n: usize) -> String {
    let mut body = String::new();
    for i in 0..n {
        body.push_str(&format!(
            "cpu,host=h{},group={group} usage={}.5,pad=\"{}\" {}\n",
            i % 7,
            i,
            "x".repeat(64),
            from + i as i64
        ));
    }
    body
}

#[test]
fn schedules_run_on_time_keep_their_policy_and_cover_their_tier_only() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    make_tiers(&data);
    init_repo(&repo);
    let config = t.path().join("strata.toml");
    std::fs::write(
        &config,
        format!(
            r#"
repo = "{}"
jobs_history = "{}"

[[schedule]]
name = "hot"
cron = "*/2 * * * * *"
tiers = ["hot"]
retention = {{ keep_last = 3, grace = "0s" }}

[[schedule]]
name = "cold"
space_trigger = "256KiB"
tiers = ["cold"]
retention = {{ keep_last = 3, grace = "0s" }}
"#,
            repo.display(),
            t.path().join("jobs.log").display()
        ),
    )
    .unwrap();
    let server = start(&data, &config);
    let sched = get(&server, "/api/v1/schedules");
    assert_eq!(sched["schedules"].as_array().unwrap().len(), 2, "{sched}");
    assert_eq!(
        sched["schedules"][0]["state"]["groups"],
        serde_json::json!(["hot"])
    );

    // A few seconds of small writes to the hot group only: the cron schedule runs, the space
    // trigger (256 KiB) does not fire.
    let base = base_secs();
    let started = Instant::now();
    let mut most_hot = 0;
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(9) {
        server.write_ok("hot", "s", &lines("hot", base + i * 10, 10));
        i += 1;
        let snaps = snapshots(&repo);
        most_hot = most_hot.max(of(&snaps, "hot").len());
        std::thread::sleep(Duration::from_millis(300));
    }
    let snaps = snapshots(&repo);
    let hot = of(&snaps, "hot");
    assert!(
        hot.len() >= 2,
        "the 2 s cron made too few snapshots: {snaps:?}"
    );
    // Keep-last 3, seen between a backup and its retention: never more than one over.
    assert!(most_hot <= 4, "{most_hot} hot snapshots at once");
    assert!(
        of(&snaps, "cold").is_empty(),
        "space trigger fired early: {snaps:?}"
    );
    for s in &hot {
        assert_eq!(s["groups"], serde_json::json!(["hot"]), "{s}");
    }
    let m = metrics(&server);
    let runs = sample(&m, "strata_backup_runs_total{schedule=\"hot\"}").unwrap();
    assert!(runs >= 3.0, "{m}");
    assert!(
        sample(
            &m,
            "strata_backup_last_success_timestamp_seconds{schedule=\"hot\"}"
        )
        .unwrap()
            > 1e9
    );
    assert_eq!(
        sample(&m, "strata_backup_last_outcome{schedule=\"hot\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "strata_backup_snapshots_kept{schedule=\"hot\"}"),
        Some(3.0)
    );
    assert!(
        sample(
            &m,
            "strata_backup_next_run_timestamp_seconds{schedule=\"hot\"}"
        )
        .unwrap()
            > 1e9
    );
    assert!(sample(&m, "strata_backup_repository_bytes{schedule=\"hot\"}").unwrap() > 0.0);
    assert_eq!(
        sample(&m, "strata_backup_failures_total{schedule=\"hot\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(&m, "strata_backup_runs_total{schedule=\"cold\"}"),
        Some(0.0)
    );

    // Now more than 256 KiB into the cold group: the space trigger fires.
    for k in 0..4 {
        server.write_ok("cold", "s", &lines("cold", base + k * 1000, 1000));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let cold = loop {
        let c = of(&snapshots(&repo), "cold");
        if !c.is_empty() || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!cold.is_empty(), "space trigger never fired");
    assert_eq!(cold[0]["groups"], serde_json::json!(["cold"]));
    let m = metrics(&server);
    assert!(sample(&m, "strata_backup_runs_total{schedule=\"cold\"}").unwrap() >= 1.0);
    assert!(sample(&m, "strata_backup_uploaded_bytes_total{schedule=\"cold\"}").unwrap() > 0.0);

    // Jobs: filtered by schedule and kind; a retention prune follows each backup.
    let jobs = get(&server, "/api/v1/jobs?schedule=hot&kind=backup");
    let list = jobs["jobs"].as_array().unwrap();
    assert!(list.len() >= 3, "{jobs}");
    assert!(
        list.iter()
            .all(|j| j["schedule"] == "hot" && j["kind"] == "backup")
    );
    assert!(
        list.iter()
            .any(|j| j["state"] == "succeeded" && j["trigger"] == "cron")
    );
    let prunes = get(&server, "/api/v1/jobs?kind=prune&schedule=hot");
    assert!(!prunes["jobs"].as_array().unwrap().is_empty(), "{prunes}");
    let cold_jobs = get(&server, "/api/v1/jobs?schedule=cold");
    assert!(
        cold_jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["trigger"] == "space"),
        "{cold_jobs}"
    );
    assert!(server.stop().success());

    // Every kept snapshot verifies with its data.
    let out = std::process::Command::new(BIN)
        .env("STRATA_REPO_PASSWORD", PASSWORD)
        .args([
            "verify",
            "--repo",
            repo.to_str().unwrap(),
            "--all",
            "--read-data",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The history survives a restart.
    let mut c = std::fs::read_to_string(&config).unwrap();
    c = c.replace("*/2 * * * * *", "0 0 0 1 1 *");
    std::fs::write(&config, c).unwrap();
    let server = start(&data, &config);
    let jobs = get(
        &server,
        "/api/v1/jobs?kind=backup&schedule=hot&state=succeeded",
    );
    assert!(jobs["jobs"].as_array().unwrap().len() >= 3, "{jobs}");
    assert!(server.stop().success());
}

#[test]
fn bad_schedules_refuse_start_naming_the_key_and_the_fix() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    make_tiers(&data);
    init_repo(&repo);
    for (body, want) in [
        (
            "name = \"x\"\ncron = \"every hour\"\n",
            "schedule 'x': cron: ",
        ),
        (
            "name = \"x\"\ncron = \"0 * * * * *\"\ngroups = [\"nope\"]\n",
            "schedule 'x': groups: group 'nope' does not exist",
        ),
        (
            "name = \"x\"\ncron = \"0 * * * * *\"\ntiers = [\"lukewarm\"]\n",
            "schedule 'x': tiers: no group has backup_tier 'lukewarm'",
        ),
        (
            "name = \"x\"\ncron = \"0 * * * * *\"\nretention = { keep_last = 0 }\n",
            "schedule 'x': retention: keeps no snapshot",
        ),
        (
            "name = \"x\"\ncron = \"0 * * * * *\"\nrepository = { url = \"/nonexistent/repo\" }\n",
            "schedule 'x': repository: /nonexistent/repo cannot be opened",
        ),
    ] {
        let config = t.path().join("bad.toml");
        std::fs::write(
            &config,
            format!("repo = \"{}\"\n[[schedule]]\n{body}", repo.display()),
        )
        .unwrap();
        let err = Server::try_start(Opts {
            args: &["--config", config.to_str().unwrap()],
            env: &[("STRATA_REPO_PASSWORD", PASSWORD)],
            data_dir: Some(&data),
            token: None,
        })
        .err()
        .expect("the server started with a bad schedule");
        assert!(err.contains(want), "want {want:?} in {err}");
    }
}
