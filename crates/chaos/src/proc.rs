//! Running the real `strata` binary: one-shot commands, commands SIGKILLed after a delay, and
//! `strata server` processes that can be SIGKILLed or stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{ChaosError, Result};

/// Password of every repository the loops create; the KDF is made cheap at `repo init`.
pub const PASSWORD: &str = "chaos-loop-password";

/// Environment variables that would change what the binary does under test.
const STRATA_VARS: &[&str] = &[
    "STRATA_CONFIG",
    "STRATA_DATA_DIR",
    "STRATA_LISTEN",
    "STRATA_REPO",
    "STRATA_AUTH_TOKEN",
    "STRATA_MAX_BODY_BYTES",
    "STRATA_FSYNC",
    "STRATA_LOG",
    "STRATA_LOG_FORMAT",
    "STRATA_IDLE_FLUSH",
    "STRATA_ARCHIVE",
    "STRATA_ARCHIVE_MAX_PENDING",
    "STRATA_ARCHIVE_INTERVAL",
];

/// How long a server may take to print its listening line (a restart replays the WAL).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a SIGTERMed server may take to flush and exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// What happened to a command that was SIGKILLed after a delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillOutcome {
    /// The kill landed while the command was running.
    Killed,
    /// The command had already exited (with this success, after `took`) before the kill
    /// was due.
    Finished { success: bool, took: Duration },
}

#[derive(Debug, Clone)]
pub struct Strata {
    bin: PathBuf,
}

impl Strata {
    pub fn new(bin: PathBuf) -> Strata {
        Strata { bin }
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        for v in STRATA_VARS {
            c.env_remove(v);
        }
        c.env("STRATA_REPO_PASSWORD", PASSWORD);
        c.stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Result<Output> {
        self.command()
            .args(args)
            .output()
            .map_err(ChaosError::io(format!("run {}", self.bin.display())))
    }

    /// Runs and requires success; returns stdout.
    pub fn run_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if !out.status.success() {
            return Err(ChaosError::Command {
                args: args.join(" "),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs with `--json` already among `args` and parses stdout.
    pub fn run_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let out = self.run_ok(args)?;
        serde_json::from_str(&out).map_err(|e| ChaosError::Output {
            args: args.join(" "),
            detail: format!("not JSON ({e}): {out}"),
        })
    }

    /// Starts the command, SIGKILLs it after `delay` unless it exited before.
    pub fn kill_after(&self, args: &[&str], delay: Duration) -> Result<KillOutcome> {
        let mut child = self
            .command()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(ChaosError::io(format!("start {}", self.bin.display())))?;
        Ok(kill_child_after(&mut child, delay))
    }

    /// Starts a command in the background (stdout/stderr discarded), for callers that decide
    /// themselves what to kill.
    pub fn spawn(&self, args: &[&str]) -> Result<Child> {
        self.command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(ChaosError::io(format!("start {}", self.bin.display())))
    }
}

/// Polls the child until `delay` has passed, then SIGKILLs it (std's `Child::kill` is SIGKILL).
pub fn kill_child_after(child: &mut Child, delay: Duration) -> KillOutcome {
    let started = Instant::now();
    let deadline = started + delay;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return KillOutcome::Finished {
                success: status.success(),
                took: started.elapsed(),
            };
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(2)));
    }
    let _ = child.kill();
    match child.wait() {
        // A child that exited between the last poll and the kill reports its own status.
        Ok(status) if status.code().is_some() => KillOutcome::Finished {
            success: status.success(),
            took: started.elapsed(),
        },
        _ => KillOutcome::Killed,
    }
}

/// Sends SIGTERM with kill(1): the workspace denies unsafe code, so no libc::kill.
fn sigterm(pid: u32) -> Result<()> {
    let st = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .map_err(ChaosError::io("run kill -TERM"))?;
    if st.success() {
        Ok(())
    } else {
        Err(ChaosError::io("send SIGTERM")(std::io::Error::other(
            st.to_string(),
        )))
    }
}

/// A running `strata server` on an ephemeral loopback port.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub data_dir: PathBuf,
}

impl Server {
    /// Starts a server on `data_dir`, appending its stderr to `log`, and waits until it listens.
    pub fn start(strata: &Strata, data_dir: &Path, log: &Path) -> Result<Server> {
        Server::start_with(strata, data_dir, log, &[])
    }

    /// [`Server::start`] with more arguments (e.g. `--repo R --archive`).
    pub fn start_with(
        strata: &Strata,
        data_dir: &Path,
        log: &Path,
        extra: &[&str],
    ) -> Result<Server> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(ChaosError::io(format!("open {}", log.display())))?;
        let mut child = strata
            .command()
            .arg("server")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(ChaosError::io("start strata server"))?;
        let start_failed = |child: &mut Child| {
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            ChaosError::ServerStart {
                data_dir: data_dir.to_path_buf(),
                log: log.to_path_buf(),
                tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            }
        };
        let Some(stdout) = child.stdout.take() else {
            return Err(start_failed(&mut child));
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => Ok(Server {
                child: Some(child),
                url,
                data_dir: data_dir.to_path_buf(),
            }),
            Err(_) => Err(start_failed(&mut child)),
        }
    }

    /// SIGKILL, and reap.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGTERM and wait for a clean exit (the engine flushes its memtables on the way out).
    pub fn stop(mut self) -> Result<()> {
        let Some(mut c) = self.child.take() else {
            return Ok(());
        };
        sigterm(c.id())?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match c.try_wait() {
                Ok(Some(st)) if st.success() => return Ok(()),
                Ok(Some(st)) => {
                    return Err(ChaosError::Command {
                        args: "server (SIGTERM)".into(),
                        status: st.to_string(),
                        stderr: "see the server log".into(),
                    });
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = c.kill();
                    let _ = c.wait();
                    return Err(ChaosError::Command {
                        args: "server (SIGTERM)".into(),
                        status: "did not exit in time".into(),
                        stderr: "see the server log".into(),
                    });
                }
            }
        }
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
