//! Shared helpers for the `server_*` integration tests: start the real `strata` binary on an
//! ephemeral loopback port, talk HTTP to it, stop it with SIGTERM.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_strata");

/// Environment variables that would change the server's configuration under test.
const STRATA_VARS: &[&str] = &[
    "STRATA_CONFIG",
    "STRATA_DATA_DIR",
    "STRATA_LISTEN",
    "STRATA_REPO",
    "STRATA_AUTH_TOKEN",
    "STRATA_MAX_BODY_BYTES",
    "STRATA_FSYNC",
    "STRATA_LOG",
];

pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub log: PathBuf,
    client: reqwest::blocking::Client,
    token: Option<String>,
    /// Removed when the server handle is dropped.
    _log_dir: tempfile::TempDir,
}

pub struct Opts<'a> {
    pub args: &'a [&'a str],
    pub env: &'a [(&'a str, &'a str)],
    /// Pass `--data-dir` (off when the test sets it through env or file).
    pub data_dir: Option<&'a Path>,
    pub token: Option<&'a str>,
}

impl Server {
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(Opts {
            args: &[],
            env: &[],
            data_dir: Some(data_dir),
            token: None,
        })
    }

    pub fn start_with(o: Opts) -> Server {
        Self::try_start(o).unwrap_or_else(|log| panic!("server did not start; its log:\n{log}"))
    }

    /// Start and wait for the "listening on" line; `Err(log)` if the process exits first.
    pub fn try_start(o: Opts) -> Result<Server, String> {
        Self::try_start_limited(o, None)
    }

    /// [`Server::try_start`] with the open-file limit (soft and hard) set to `nofile`.
    pub fn try_start_limited(o: Opts, nofile: Option<u64>) -> Result<Server, String> {
        let log_dir = tempfile::Builder::new()
            .prefix("strata-log")
            .tempdir()
            .unwrap();
        let log = log_dir.path().join("server.log");
        let mut cmd = match nofile {
            // Through the shell: setting a limit in the child needs pre_exec (unsafe).
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.arg("server");
        if !o.args.contains(&"--listen") {
            cmd.arg("--listen").arg("127.0.0.1:0");
        }
        if let Some(d) = o.data_dir {
            cmd.arg("--data-dir").arg(d);
        }
        cmd.args(o.args);
        for v in STRATA_VARS {
            cmd.env_remove(v);
        }
        for (k, v) in o.env {
            cmd.env(k, v);
        }
        cmd.current_dir(log_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => Ok(Server {
                child: Some(child),
                url,
                log,
                client: reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .unwrap(),
                token: o.token.map(str::to_string),
                _log_dir: log_dir,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(std::fs::read_to_string(&log).unwrap_or_default())
            }
        }
    }

    /// Process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn auth(&self, r: reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder {
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        self.auth(self.client.request(method, format!("{}{path}", self.url)))
    }

    /// POST line protocol to `/api/v1/write?group=G&precision=P`; returns (status, body).
    pub fn write(&self, group: &str, precision: &str, body: &str) -> (u16, String) {
        let r = self
            .request(
                reqwest::Method::POST,
                &format!("/api/v1/write?group={group}&precision={precision}"),
            )
            .body(body.to_string())
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    pub fn write_ok(&self, group: &str, precision: &str, body: &str) {
        let (status, text) = self.write(group, precision, body);
        assert_eq!(status, 204, "write failed: {text}");
    }

    /// POST a query; returns (status, JSON body).
    pub fn query(&self, q: &Value) -> (u16, Value) {
        let r = self
            .request(reqwest::Method::POST, "/api/v1/query")
            .json(q)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    pub fn query_ok(&self, q: &Value) -> Value {
        let (status, v) = self.query(q);
        assert_eq!(status, 200, "query {q} failed: {v}");
        v
    }

    /// SIGTERM, then wait for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        // kill(1) rather than libc: the workspace denies unsafe code.
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success(), "could not send SIGTERM");
        child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A recent, whole-hour base time in seconds, so test data is well inside the default TTL.
pub fn base_secs() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now / 3600 - 3) * 3600
}

/// The rows of the only series of a result.
pub fn only_rows(v: &Value) -> Vec<Vec<Value>> {
    let series = v["series"].as_array().unwrap();
    assert_eq!(series.len(), 1, "expected one series in {v}");
    rows(&series[0])
}

pub fn rows(series: &Value) -> Vec<Vec<Value>> {
    series["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().clone())
        .collect()
}

/// Run `strata` with arguments; returns (success, stdout, stderr).
pub fn strata(args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    for v in STRATA_VARS {
        cmd.env_remove(v);
    }
    let out = cmd.args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
