//! Child processes the harness starts (servers, backup tools) and what it measures of them:
//! CPU seconds from `/proc/PID/stat`, peak RSS from `VmHWM` in `/proc/PID/status`.
//!
//! Every long-lived child is owned by a [`Server`] guard whose `Drop` kills it, so a panic or
//! an error never leaves a server behind. When util-linux `setpriv` is present the child is
//! also started with `--pdeathsig KILL`, so even a harness killed by a signal takes its
//! servers with it. (The death signal follows the *thread* that spawned the child: servers are
//! started from the main thread only.)

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{name} exited before it was ready ({status}); log tail:\n{tail}")]
    EarlyExit {
        name: String,
        status: String,
        tail: String,
    },
    #[error("{name} not ready after {secs} s; log tail:\n{tail}")]
    NotReady {
        name: String,
        secs: u64,
        tail: String,
    },
}

fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn has_setpriv() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        Command::new("setpriv")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    })
}

/// A free TCP port on 127.0.0.1 (bound then released; a race with other processes is possible
/// but harmless: the server then fails to start and the error says so).
pub fn free_port() -> Result<u16, ProcError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|source| ProcError::Io {
        what: "bind 127.0.0.1:0".into(),
        source,
    })?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|source| ProcError::Io {
            what: "local_addr".into(),
            source,
        })
}

/// utime + stime of a process, in seconds (all its threads).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// CPU seconds of this process's reaped children (cutime + cstime of /proc/self/stat).
fn children_cpu_seconds() -> f64 {
    let read = || -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let cu: f64 = f.get(13)?.parse().ok()?;
        let cs: f64 = f.get(14)?.parse().ok()?;
        Some((cu + cs) / clock_ticks())
    };
    read().unwrap_or(0.0)
}

/// A `/proc/PID/status` field in kB (e.g. `VmHWM`, `VmRSS`).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

fn tail(path: &Path, max: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].trim().to_string()
}

/// A running server, killed on drop.
pub struct Server {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

impl Server {
    /// Starts `program args…` with output to `log`.
    pub fn start(
        name: &str,
        program: &str,
        args: &[String],
        log: &Path,
    ) -> Result<Server, ProcError> {
        Self::start_env(name, program, args, &[], log)
    }

    /// [`Server::start`] with extra environment variables.
    pub fn start_env(
        name: &str,
        program: &str,
        args: &[String],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Result<Server, ProcError> {
        let out = File::create(log).map_err(|source| ProcError::Io {
            what: format!("create {}", log.display()),
            source,
        })?;
        let err = out.try_clone().map_err(|source| ProcError::Io {
            what: "dup log".into(),
            source,
        })?;
        let mut cmd = if has_setpriv() {
            let mut c = Command::new("setpriv");
            c.args(["--pdeathsig", "KILL", "--", program]);
            c
        } else {
            Command::new(program)
        };
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd.spawn().map_err(|source| ProcError::Spawn {
            program: program.to_string(),
            source,
        })?;
        Ok(Server {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log, 2000)
    }

    /// Polls `url` until it answers with a status below 500.
    pub fn wait_ready(&mut self, url: &str, timeout: Duration) -> Result<(), ProcError> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| ProcError::Io {
                what: "http client".into(),
                source: std::io::Error::other(e),
            })?;
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(ProcError::EarlyExit {
                    name: self.name.clone(),
                    status: status.to_string(),
                    tail: self.log_tail(),
                });
            }
            if let Ok(resp) = client.get(url).send()
                && resp.status().as_u16() < 500
            {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(ProcError::NotReady {
                    name: self.name.clone(),
                    secs: timeout.as_secs(),
                    tail: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then SIGKILL after `grace`: lets a server flush before its directory is used.
    pub fn stop(mut self, grace: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < grace {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Drop does the rest.
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The outcome of a measured command.
#[derive(Debug, Clone)]
pub struct Measured {
    pub status: ExitStatus,
    pub wall: Duration,
    pub cpu_s: f64,
    pub peak_rss_kb: u64,
    pub stdout: String,
    pub stderr: String,
}

impl Measured {
    /// The first line of stderr (what a failed CLI says; stdout if stderr is empty), for
    /// "skipped: …" reasons.
    pub fn reason(&self) -> String {
        let first = |s: &str| {
            s.lines()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
        };
        let line = first(&self.stderr)
            .or_else(|| first(&self.stdout))
            .unwrap_or_default();
        format!("exit {}: {}", self.status.code().unwrap_or(-1), line)
    }
}

/// Runs a command to completion, measuring wall time, CPU (exact, from the parent's reaped
/// children counters) and peak RSS (VmHWM polled every 5 ms; a child living less than that
/// may report 0).
pub fn run_measured(
    program: &str,
    args: &[String],
    envs: &[(&str, &str)],
) -> Result<Measured, ProcError> {
    let dir = tempfile::tempdir().map_err(|source| ProcError::Io {
        what: "tempdir".into(),
        source,
    })?;
    let out_path = dir.path().join("out");
    let err_path = dir.path().join("err");
    let io_err = |what: &str| {
        let what = what.to_string();
        move |source| ProcError::Io { what, source }
    };
    let out = File::create(&out_path).map_err(io_err("stdout file"))?;
    let err = File::create(&err_path).map_err(io_err("stderr file"))?;
    let cpu_before = children_cpu_seconds();
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|source| ProcError::Spawn {
            program: program.to_string(),
            source,
        })?;
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some(hwm) = status_kb(pid, "VmHWM") {
            peak = peak.max(hwm);
        }
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(io_err("wait")(e)),
        }
    };
    let wall = start.elapsed();
    let cpu_s = children_cpu_seconds() - cpu_before;
    Ok(Measured {
        status,
        wall,
        cpu_s,
        peak_rss_kb: peak,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    })
}

/// Apparent size of a tree in bytes (`du -sb`), each inode once (snapshots hard-link parts),
/// skipping top-level entries named in `exclude`.
pub fn du(path: &Path, exclude: &[&str]) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![(path.to_path_buf(), true)];
    while let Some((p, top)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in rd.flatten() {
            if top && exclude.iter().any(|x| e.file_name() == *x) {
                continue;
            }
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push((e.path(), false));
            } else if seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_child_and_reads_proc() {
        let m = run_measured(
            "sh",
            &["-c".into(), "echo hi; echo oops >&2; exit 3".into()],
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.status.code(), Some(3));
        assert_eq!(m.stdout.trim(), "hi");
        assert_eq!(m.reason(), "exit 3: oops");
        let me = std::process::id();
        assert!(cpu_seconds(me).is_some());
        assert!(status_kb(me, "VmHWM").unwrap_or(0) > 0);
    }

    #[test]
    fn server_guard_kills_on_drop_and_du_dedups_links() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = Server::start("sleep", "sleep", &["60".into()], &tmp.path().join("log"))
            .unwrap_or_else(|e| panic!("{e}"));
        let pid = s.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(s);
        assert!(
            !Path::new(&format!("/proc/{pid}/status")).exists()
                || status_kb(pid, "VmRSS").is_none()
        );

        let d = tmp.path().join("d");
        std::fs::create_dir_all(d.join("snapshots")).unwrap_or_default();
        std::fs::write(d.join("a"), vec![0u8; 100]).unwrap_or_default();
        std::fs::hard_link(d.join("a"), d.join("b")).unwrap_or_default();
        std::fs::write(d.join("snapshots/c"), vec![0u8; 50]).unwrap_or_default();
        assert_eq!(du(&d, &["snapshots"]), 100);
        assert_eq!(du(&d, &[]), 150);
    }
}
