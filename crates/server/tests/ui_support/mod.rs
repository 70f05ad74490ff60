//! Helpers of the web UI tests: the `strata` binary of this workspace, a real server on a
//! loopback port, the browser tools, screenshots.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod webdriver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Environment variables that would change the server's configuration under test.
const STRATA_VARS: &[&str] = &[
    "STRATA_CONFIG",
    "STRATA_DATA_DIR",
    "STRATA_LISTEN",
    "STRATA_REPO",
    "STRATA_AUTH_TOKEN",
    "STRATA_REPO_PASSWORD",
    "STRATA_ARCHIVE",
];

/// `$STRATA_BIN`, else `strata` beside this test's target directory: `cargo test --workspace`
/// (scripts/test.sh) builds it first; alone, run `cargo build -p strata-cli` before `cargo
/// test -p strata-server` so it is not stale.
pub fn strata_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("STRATA_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/ui_browser-<hash> -> target/<profile>/strata
    let bin = exe.parent().unwrap().parent().unwrap().join("strata");
    assert!(
        bin.is_file(),
        "{} not found: run `cargo build -p strata-cli` first (or set STRATA_BIN)",
        bin.display()
    );
    bin
}

/// Runs `strata ARGS`; panics with its output unless it succeeds.
pub fn strata(args: &[&str]) -> String {
    let mut c = Command::new(strata_bin());
    for v in STRATA_VARS {
        c.env_remove(v);
    }
    let out = c.args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "strata {args:?} failed: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

pub struct Server {
    child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Server {
    /// `strata server --config CONFIG` on 127.0.0.1:0; waits for its "listening on" line.
    pub fn start(config: &Path, log: &Path) -> Server {
        let mut cmd = Command::new(strata_bin());
        for v in STRATA_VARS {
            cmd.env_remove(v);
        }
        cmd.arg("server")
            .arg("--config")
            .arg(config)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap());
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
            Ok(url) => Server {
                child,
                url,
                log: log.to_path_buf(),
            },
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start; its log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium and chromedriver, if installed (`scripts/install-test-deps.sh` installs them).
pub fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    let find = |names: &[&str]| {
        names.iter().find_map(|n| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|d| d.join(n))
                .find(|p| p.is_file())
        })
    };
    let driver = find(&["chromedriver"])?;
    let chromium = find(&["chromium", "chromium-browser", "google-chrome"])?;
    Some((driver, chromium))
}

/// Where failure screenshots go: `target/tmp/ui-browser/` (gitignored).
pub fn artifacts_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-browser");
    std::fs::create_dir_all(&d).unwrap();
    d
}
