//! VictoriaMetrics (the Debian `victoria-metrics` package: `victoria-metrics`, `vmbackup`,
//! `vmrestore`), run with a fresh data directory on 127.0.0.1, otherwise default settings,
//! except what makes the comparison fair: no retention limit on old timestamps, no query
//! result cache, no hidden newest 30 s.

use std::path::Path;
use std::time::Duration;

use super::{Running, Tsdb, check, http_client};
use crate::procs::{Measured, Server, free_port, run_measured};
use crate::queries::Query;
use crate::spool::Protocol;

pub struct VictoriaMetrics;

pub fn installed() -> bool {
    ["victoria-metrics", "vmbackup", "vmrestore"]
        .iter()
        .all(|p| super::is_installed(p))
}

fn get_json(url: &str) -> Result<serde_json::Value, String> {
    let http = http_client()?;
    let resp = http
        .get(url)
        .send()
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let text = resp.text().unwrap_or_default();
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {status}: {}", text.trim()));
    }
    serde_json::from_str(&text).map_err(|e| format!("GET {url}: not JSON ({e})"))
}

/// vmbackup and vmrestore serve their own metrics, by default on `:8420` (all interfaces,
/// and one fixed port that concurrent runs fight over): keep them on a free local port.
fn tool_listen() -> Result<String, String> {
    let port = free_port().map_err(|e| e.to_string())?;
    Ok(format!("-httpListenAddr=127.0.0.1:{port}"))
}

/// vmbackup/vmrestore 1.79 can panic on exit ("BUG: there is no http server at …") when the
/// work finished before their metrics server had started — a shutdown race after the job
/// completed. Their own log says whether it did ("… is complete", "restored … bytes"); if so, count it a success.
fn tolerate_shutdown_race(mut m: Measured) -> Measured {
    if !m.status.success()
        && m.stderr.contains("BUG: there is no http server at")
        && (m.stderr.contains(" is complete") || m.stderr.contains("restored "))
    {
        m.status = std::os::unix::process::ExitStatusExt::from_raw(0);
    }
    m
}

impl Tsdb for VictoriaMetrics {
    fn system(&self) -> &'static str {
        "vm"
    }
    fn backup_tool(&self) -> &'static str {
        "vmbackup"
    }
    fn restore_tool(&self) -> &'static str {
        "vmrestore"
    }

    fn start(&self, data_dir: &Path, log: &Path) -> Result<Running, String> {
        let port = free_port().map_err(|e| e.to_string())?;
        let listen = format!("127.0.0.1:{port}");
        let args = vec![
            format!("-storageDataPath={}", data_dir.display()),
            format!("-httpListenAddr={listen}"),
            "-retentionPeriod=100y".into(),
            "-search.disableCache".into(),
            "-search.latencyOffset=0s".into(),
            "-loggerLevel=ERROR".into(),
        ];
        let mut server = Server::start("victoria-metrics", "victoria-metrics", &args, log)
            .map_err(|e| e.to_string())?;
        let base_url = format!("http://{listen}");
        server
            .wait_ready(&format!("{base_url}/health"), Duration::from_secs(30))
            .map_err(|e| e.to_string())?;
        Ok(Running {
            server,
            base_url,
            data_dir: data_dir.to_path_buf(),
        })
    }

    fn write_url(&self, r: &Running, protocol: Protocol) -> String {
        match protocol {
            Protocol::Lp => format!("{}/write", r.base_url),
            Protocol::Prom => format!("{}/api/v1/write", r.base_url),
        }
    }

    fn flush(&self, r: &Running) {
        // VM acknowledges after buffering; this makes the buffered rows searchable parts.
        if let Ok(http) = http_client() {
            let _ = http
                .get(format!("{}/internal/force_flush", r.base_url))
                .send();
        }
    }

    fn disk_excludes(&self) -> &'static [&'static str] {
        &["snapshots", "cache", "tmp", "flock.lock"]
    }

    fn query(
        &self,
        r: &Running,
        http: &reqwest::blocking::Client,
        q: &Query,
    ) -> Result<u64, String> {
        let (path, params) = q.promql();
        let url = format!("{}{path}", r.base_url);
        let full =
            reqwest::Url::parse_with_params(&url, &params).map_err(|e| format!("{url}: {e}"))?;
        let resp = http
            .get(full)
            .send()
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status();
        let text = resp.text().map_err(|e| format!("GET {url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}: {}", text.trim()));
        }
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("VM answer not JSON: {e}"))?;
        let result = v
            .pointer("/data/result")
            .and_then(|r| r.as_array())
            .ok_or_else(|| format!("VM answer without data.result: {}", text.trim()))?;
        Ok(result
            .iter()
            .map(|s| match s.get("values").and_then(|v| v.as_array()) {
                Some(vals) => vals.len() as u64,
                None => 1, // instant vector: one value per series
            })
            .sum())
    }

    fn init_repo(&self, repo: &Path, _encrypted: bool) -> Result<(), String> {
        // vmbackup has neither compression nor encryption settings: a directory is a repository.
        std::fs::create_dir_all(repo).map_err(|e| format!("create {}: {e}", repo.display()))
    }

    fn backup(&self, r: &Running, repo: &Path) -> Result<Measured, String> {
        // The snapshot is part of what a vmbackup user pays for, so it is inside the timing.
        let start = std::time::Instant::now();
        let v = get_json(&format!("{}/snapshot/create", r.base_url))?;
        let name = v
            .get("snapshot")
            .and_then(|s| s.as_str())
            .ok_or_else(|| format!("/snapshot/create answered {v}"))?
            .to_string();
        let args = vec![
            format!("-storageDataPath={}", r.data_dir.display()),
            format!("-snapshotName={name}"),
            format!("-dst=fs://{}", repo.display()),
            tool_listen()?,
        ];
        let m = run_measured("vmbackup", &args, &[]).map_err(|e| e.to_string());
        let _ = get_json(&format!("{}/snapshot/delete?snapshot={name}", r.base_url));
        let mut m = check("vmbackup", tolerate_shutdown_race(m?))?;
        m.wall = start.elapsed();
        Ok(m)
    }

    fn restore(&self, repo: &Path, dst: &Path) -> Result<Measured, String> {
        let args = vec![
            format!("-src=fs://{}", repo.display()),
            format!("-storageDataPath={}", dst.display()),
            tool_listen()?,
        ];
        check(
            "vmrestore",
            run_measured("vmrestore", &args, &[]).map_err(|e| e.to_string())?,
        )
    }
}
