//! `backup_nothing_new_1000_parts`: the brief's "backup with nothing new ≤ 50 ms for 1,000
//! parts". A Strata server holds N parts (one per segment and shard: hourly segments, two
//! shards, N/2 hours of a few hosts, as a long-retention group looks after its merges); a full
//! backup, then the same backup again with nothing new, two ways:
//! - the CLI (`strata backup --server URL --json`): wall time of the process, and its phase
//!   timings, of which `unlock_s` is the Argon2id key derivation every invocation pays;
//! - a server backup job (`POST /api/v1/backups`), whose repository key stays unlocked in the
//!   server across jobs: the job's own `backup_s` (snapshot, plan, manifest) once the key is
//!   cached.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::procs::{Server, free_port};
use crate::systems::http_client;
use crate::systems::strata::{PASSWORD, Strata};

pub const SCENARIO: &str = "backup_nothing_new_1000_parts";
const GROUP: &str = "parts";
const HOSTS: usize = 8;
const HOUR_NS: i64 = 3_600_000_000_000;

/// Runs the scenario; returns its metrics or why it could not run.
pub fn run(strata: &Strata, work: &Path, parts: usize) -> Result<Vec<(&'static str, f64)>, String> {
    let dir = work.join("parts-data");
    let repo = work.join("parts-repo");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&repo);
    let out = measure(strata, &dir, &repo, parts);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&repo);
    out
}

fn measure(
    strata: &Strata,
    dir: &Path,
    repo: &Path,
    parts: usize,
) -> Result<Vec<(&'static str, f64)>, String> {
    strata.init_encrypted(repo)?;
    let port = free_port().map_err(|e| e.to_string())?;
    let base = format!("http://127.0.0.1:{port}");
    let args: Vec<String> = [
        "server",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
        &dir.to_string_lossy(),
        "--repo",
        &repo.to_string_lossy(),
    ]
    .map(String::from)
    .to_vec();
    let log = dir.with_extension("log");
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let bin = strata.bin.to_string_lossy().into_owned();
    let mut server = Server::start_env(
        "strata server",
        &bin,
        &args,
        &[("STRATA_REPO_PASSWORD", PASSWORD)],
        &log,
    )
    .map_err(|e| e.to_string())?;
    server
        .wait_ready(&format!("{base}/healthz"), Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    let http = http_client()?;
    load(&http, &base, parts)?;

    // Full backup (also flushes the memtable into the N parts), then nothing new.
    let full = strata.backup_json(&base, repo)?;
    let live_parts = count_parts(&dir.join("data").join(GROUP));
    let (wall, json) = strata.backup_json(&base, repo).map(|(m, j)| (m.wall, j))?;
    let t = &json["timings"];
    let f = |k: &str| t[k].as_f64().unwrap_or(f64::NAN);
    let mut m = vec![
        ("parts", live_parts as f64),
        ("full_wall_s", full.0.wall.as_secs_f64()),
        ("cli_wall_ms", wall.as_secs_f64() * 1e3),
        ("cli_unlock_ms", f("unlock_s") * 1e3),
        (
            "cli_without_unlock_ms",
            (wall.as_secs_f64() - f("unlock_s")) * 1e3,
        ),
        ("cli_snapshot_ms", f("snapshot_s") * 1e3),
        ("cli_list_ms", f("list_s") * 1e3),
        ("cli_plan_ms", f("plan_s") * 1e3),
        ("cli_upload_ms", f("upload_s") * 1e3),
        ("cli_manifest_ms", f("manifest_s") * 1e3),
        ("cli_release_ms", f("release_s") * 1e3),
        (
            "files_uploaded",
            json["stats"]["new_objects"].as_f64().unwrap_or(f64::NAN),
        ),
    ];
    // Server jobs: the first unlocks the key, the next ones reuse it.
    let first = server_job(&http, &base)?;
    let second = server_job(&http, &base)?;
    m.push(("job_first_unlock_ms", first.0 * 1e3));
    m.push(("job_first_ms", first.1 * 1e3));
    m.push(("job_cached_unlock_ms", second.0 * 1e3));
    m.push(("job_cached_ms", second.1 * 1e3));
    server.stop(Duration::from_secs(10));
    Ok(m)
}

/// `HOSTS` series, one point per host per hour over `parts / 2` hours: one part per hourly
/// segment and shard once flushed.
fn load(http: &reqwest::blocking::Client, base: &str, parts: usize) -> Result<(), String> {
    let hours = parts.div_ceil(2) as i64;
    let put = format!("{base}/api/v1/groups/{GROUP}");
    let resp = http
        .put(&put)
        .header("Content-Type", "application/json")
        .body(r#"{"ttl":"3650days","segment_interval":"1h","shards":2}"#)
        .send()
        .map_err(|e| format!("PUT {put}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("PUT {put}: HTTP {}", resp.status()));
    }
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let start = (now / HOUR_NS - hours - 1) * HOUR_NS;
    let mut body = String::new();
    for h in 0..hours {
        for host in 0..HOSTS {
            body.push_str(&format!(
                "cpu,host=h{host} usage={}i {}\n",
                h % 100,
                start + h * HOUR_NS + host as i64
            ));
        }
    }
    let url = format!("{base}/api/v1/write?group={GROUP}&precision=ns");
    let resp = http
        .post(&url)
        .body(body)
        .send()
        .map_err(|e| format!("POST {url}: {e}"))?;
    if !resp.status().is_success() {
        let status = resp.status();
        return Err(format!(
            "POST {url}: HTTP {status}: {}",
            resp.text().unwrap_or_default()
        ));
    }
    Ok(())
}

/// Part directories under a group directory (`seg-*/shard-*/<part>/`).
fn count_parts(group_dir: &Path) -> usize {
    let subdirs = |d: &Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default()
    };
    subdirs(group_dir)
        .iter()
        .flat_map(|seg| subdirs(seg))
        .map(|shard| subdirs(&shard).len())
        .sum()
}

/// Starts a backup job and waits for it; returns (unlock s, job s) as the job reports them.
fn server_job(http: &reqwest::blocking::Client, base: &str) -> Result<(f64, f64), String> {
    let url = format!("{base}/api/v1/backups");
    let resp = http
        .post(&url)
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = resp.status();
    let v: serde_json::Value = resp
        .json()
        .map_err(|e| format!("POST {url}: HTTP {status}, not JSON: {e}"))?;
    let Some(id) = v["job"].as_str() else {
        return Err(format!("POST {url}: HTTP {status}: {v}"));
    };
    let job_url = format!("{base}/api/v1/jobs/{id}");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        let v: serde_json::Value = http
            .get(&job_url)
            .send()
            .and_then(|r| r.json())
            .map_err(|e| format!("GET {job_url}: {e}"))?;
        match v["state"].as_str() {
            Some("succeeded") => {
                let t = &v["timings"];
                let unlock = t["unlock_s"].as_f64().unwrap_or(f64::NAN);
                let run = t["backup_s"].as_f64().unwrap_or(f64::NAN);
                return Ok((unlock, run));
            }
            Some("failed") => return Err(format!("backup job failed: {}", v["error"])),
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    Err(format!("backup job {id} did not finish within 120 s"))
}
