//! Strata driven exactly as a user would: `strata server`, its HTTP API, and the backup CLI.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Running, Tsdb, check, http_client};
use crate::procs::{Measured, Server, free_port, run_measured};
use crate::queries::Query;
use crate::spool::Protocol;

pub const GROUP: &str = "bench";
/// The password of the benchmark repositories (a throwaway; repositories live in temp dirs).
pub const PASSWORD: &str = "strata-bench-password";

pub struct Strata {
    pub bin: PathBuf,
    /// More environment for the servers it starts (the in-process S3 server's endpoint and
    /// credentials, so attachments can reach it).
    pub server_env: Vec<(String, String)>,
}

impl Strata {
    fn bin(&self) -> String {
        self.bin.to_string_lossy().into_owned()
    }

    fn cli(&self, what: &str, args: &[String]) -> Result<Measured, String> {
        let m = run_measured(&self.bin(), args, &[("STRATA_REPO_PASSWORD", PASSWORD)])
            .map_err(|e| e.to_string())?;
        check(&format!("strata {what}"), m)
    }

    /// A fresh repository with compression and encryption on.
    pub fn init_encrypted(&self, repo: &Path) -> Result<(), String> {
        self.init_repo(repo, true)
    }

    /// `strata backup --server URL --json`: the measured process and its JSON answer.
    pub fn backup_json(
        &self,
        base_url: &str,
        repo: &Path,
    ) -> Result<(Measured, serde_json::Value), String> {
        let args = [
            "backup",
            "--repo",
            &repo.to_string_lossy(),
            "--server",
            base_url,
            "--json",
        ]
        .map(String::from);
        let m = self.cli("backup", &args)?;
        let v = serde_json::from_str(&m.stdout)
            .map_err(|e| format!("strata backup --json: not JSON ({e})"))?;
        Ok((m, v))
    }

    /// `DELETE /api/v1/snapshots/{id}`: lets the server drop the snapshot's pin.
    pub fn release_snapshot(&self, r: &Running, id: &str) {
        if let Ok(http) = http_client() {
            let _ = http
                .delete(format!("{}/api/v1/snapshots/{id}", r.base_url))
                .send();
        }
    }

    /// `POST /api/v1/snapshots`, then the data directory it describes written to `dst` (what
    /// restic is given to back up): pinned files hard-linked from where the server keeps
    /// them, inline metadata written; the snapshot is released at the end.
    pub fn snapshot_tree(&self, r: &Running, dst: &Path) -> Result<(), String> {
        let http = http_client()?;
        let url = format!("{}/api/v1/snapshots", r.base_url);
        let resp = http
            .post(&url)
            .send()
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        if !status.is_success() {
            return Err(format!("POST {url}: HTTP {status}: {}", first_line(&text)));
        }
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("POST {url}: not JSON ({e})"))?;
        let id = v["id"].as_str().unwrap_or_default().to_string();
        let written = write_tree(&v, dst);
        self.release_snapshot(r, &id);
        written
    }
}

/// Writes the files of a snapshot document (`docs/API.md`, version 1) under `dst`.
fn write_tree(v: &serde_json::Value, dst: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dst);
    let files = v["files"]
        .as_array()
        .ok_or("snapshot answer without files")?;
    for f in files {
        let rel = f["path"].as_str().ok_or("file without path")?;
        if rel.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(format!("unsafe snapshot path {rel}"));
        }
        let to = dst.join(rel);
        if let Some(p) = to.parent() {
            std::fs::create_dir_all(p).map_err(|e| format!("create {}: {e}", p.display()))?;
        }
        if let Some(src) = f["local_path"].as_str() {
            std::fs::hard_link(src, &to)
                .or_else(|_| std::fs::copy(src, &to).map(|_| ()))
                .map_err(|e| format!("link {src}: {e}"))?;
        } else if let Some(h) = f["inline_hex"].as_str() {
            std::fs::write(&to, unhex(h)?).map_err(|e| format!("write {}: {e}", to.display()))?;
        } else {
            return Err(format!("snapshot file {rel} has no source"));
        }
    }
    Ok(())
}

fn unhex(h: &str) -> Result<Vec<u8>, String> {
    let b = h.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Err("odd-length hex".into());
    }
    b.chunks(2)
        .map(|c| {
            std::str::from_utf8(c)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(|| "bad hex".to_string())
        })
        .collect()
}

/// `POST /api/v1/query` of `body` to the server at `base_url`: how long the request took (ms,
/// until the whole answer was read) and the answer.
pub fn post_query(
    http: &reqwest::blocking::Client,
    base_url: &str,
    body: &serde_json::Value,
) -> Result<(f64, serde_json::Value), String> {
    let url = format!("{base_url}/api/v1/query");
    let t0 = std::time::Instant::now();
    let resp = http
        .post(&url)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = resp.status();
    let text = resp.text().map_err(|e| format!("POST {url}: {e}"))?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    if !status.is_success() {
        return Err(format!("POST {url}: HTTP {status}: {}", first_line(&text)));
    }
    let v = serde_json::from_str(&text).map_err(|e| format!("POST {url}: not JSON ({e})"))?;
    Ok((ms, v))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}

impl Tsdb for Strata {
    fn system(&self) -> &'static str {
        "strata"
    }
    fn backup_tool(&self) -> &'static str {
        "strata"
    }
    fn restore_tool(&self) -> &'static str {
        "strata"
    }

    fn start(&self, data_dir: &Path, log: &Path) -> Result<Running, String> {
        if !self.bin.is_file() {
            return Err(format!("strata binary not found at {}", self.bin.display()));
        }
        let port = free_port().map_err(|e| e.to_string())?;
        let listen = format!("127.0.0.1:{port}");
        let args = vec![
            "server".to_string(),
            "--listen".into(),
            listen.clone(),
            "--data-dir".into(),
            data_dir.to_string_lossy().into_owned(),
        ];
        // The password lets the server attach the benchmark's repositories (query_repo).
        let mut env = vec![("STRATA_REPO_PASSWORD", PASSWORD)];
        env.extend(
            self.server_env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let mut server = Server::start_env("strata server", &self.bin(), &args, &env, log)
            .map_err(|e| e.to_string())?;
        let base_url = format!("http://{listen}");
        server
            .wait_ready(&format!("{base_url}/healthz"), Duration::from_secs(30))
            .map_err(|e| {
                first_line(&e.to_string())
                    .trim_end_matches("; log tail:")
                    .to_string()
                    + &tail_reason(&server)
            })?;
        // The data is old by design (it ends an hour ago, the 10x set reaches days back):
        // make sure the default TTL (30 days) never drops any of it, as VM runs with 100y.
        if let Ok(http) = http_client() {
            let _ = http
                .put(format!("{base_url}/api/v1/groups/{GROUP}"))
                .header("Content-Type", "application/json")
                .body(r#"{"ttl":"3650days"}"#)
                .send();
        }
        Ok(Running {
            server,
            base_url,
            data_dir: data_dir.to_path_buf(),
        })
    }

    fn write_url(&self, r: &Running, protocol: Protocol) -> String {
        match protocol {
            Protocol::Lp => format!("{}/api/v1/write?group={GROUP}&precision=ns", r.base_url),
            Protocol::Prom => format!("{}/api/v1/prom/write?group={GROUP}", r.base_url),
        }
    }

    fn flush(&self, _r: &Running) {
        // Strata acknowledges only durable writes: nothing to force.
    }

    fn disk_excludes(&self) -> &'static [&'static str] {
        &["snapshots", "tmp", "staging"]
    }

    fn query(
        &self,
        r: &Running,
        http: &reqwest::blocking::Client,
        q: &Query,
    ) -> Result<u64, String> {
        let (_, v) = post_query(http, &r.base_url, &q.strata_json(GROUP))?;
        let series = v.get("series").and_then(|s| s.as_array()).ok_or_else(|| {
            format!(
                "query answer has no \"series\": {}",
                first_line(&v.to_string())
            )
        })?;
        // Cells, not rows: a row holds one value per requested field (VM counts per series).
        Ok(series
            .iter()
            .map(|s| {
                let cols = s
                    .get("columns")
                    .and_then(|c| c.as_array())
                    .map_or(2, |c| c.len());
                let rows = s
                    .get("values")
                    .and_then(|v| v.as_array())
                    .map_or(0, |v| v.len());
                (rows * cols.saturating_sub(1).max(1)) as u64
            })
            .sum())
    }

    fn init_repo(&self, repo: &Path, encrypted: bool) -> Result<(), String> {
        let (enc, comp) = if encrypted {
            ("aes-256-gcm", "zstd:3")
        } else {
            ("none", "none")
        };
        let args = [
            "repo",
            "init",
            "--repo",
            &repo.to_string_lossy(),
            "--encryption",
            enc,
            "--compression",
            comp,
        ]
        .map(String::from);
        self.cli("repo init", &args).map(|_| ())
    }

    fn backup(&self, r: &Running, repo: &Path) -> Result<Measured, String> {
        let args = [
            "backup",
            "--repo",
            &repo.to_string_lossy(),
            "--server",
            &r.base_url,
        ]
        .map(String::from);
        self.cli("backup", &args)
    }

    fn restore(&self, repo: &Path, dst: &Path) -> Result<Measured, String> {
        let args = [
            "restore",
            "--repo",
            &repo.to_string_lossy(),
            "--data-dir",
            &dst.to_string_lossy(),
            "--snapshot",
            "latest",
        ]
        .map(String::from);
        self.cli("restore", &args)
    }
}

fn tail_reason(server: &Server) -> String {
    // A CLI error is one line starting with "error"; clap adds usage lines after it.
    let tail = server.log_tail();
    let lines: Vec<&str> = tail
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let pick = lines
        .iter()
        .rev()
        .find(|l| l.to_ascii_lowercase().starts_with("error"))
        .or(lines.last());
    match pick {
        Some(l) => format!(" ({l})"),
        None => String::new(),
    }
}
