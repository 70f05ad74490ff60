//! The systems under test. A [`Tsdb`] is a server the harness starts, feeds over HTTP,
//! queries and backs up with that system's own tool; `restic` is the general-purpose backup
//! peer. Every operation returns `Err(reason)` when the system cannot do it (yet): the
//! pipeline then reports the scenario as "skipped: reason" instead of failing the run.

pub mod restic;
pub mod strata;
pub mod vm;

use std::path::{Path, PathBuf};

use crate::procs::{Measured, Server};
use crate::queries::Query;
use crate::spool::Protocol;

/// A started server and where it lives.
pub struct Running {
    pub server: Server,
    pub base_url: String,
    pub data_dir: PathBuf,
}

pub trait Tsdb {
    /// Short name used in reports ("strata", "vm").
    fn system(&self) -> &'static str;
    /// Names under which its backup and restore tools are reported.
    fn backup_tool(&self) -> &'static str;
    fn restore_tool(&self) -> &'static str;
    /// Starts a server on a fresh data directory and waits until it answers.
    fn start(&self, data_dir: &Path, log: &Path) -> Result<Running, String>;
    fn write_url(&self, r: &Running, protocol: Protocol) -> String;
    /// Asks the server to make buffered data durable/visible (before quiescence and queries).
    fn flush(&self, r: &Running);
    /// Top-level entries of the data directory that are not data (snapshots, caches).
    fn disk_excludes(&self) -> &'static [&'static str];
    /// Runs one query; returns the number of result values (a sanity figure).
    fn query(
        &self,
        r: &Running,
        http: &reqwest::blocking::Client,
        q: &Query,
    ) -> Result<u64, String>;
    /// Prepares an empty backup repository (`encrypted`: compression + encryption on).
    fn init_repo(&self, repo: &Path, encrypted: bool) -> Result<(), String>;
    /// One backup of the running server into `repo` (full the first time, then incremental).
    fn backup(&self, r: &Running, repo: &Path) -> Result<Measured, String>;
    /// Restores the newest backup in `repo` into the fresh directory `dst`.
    fn restore(&self, repo: &Path, dst: &Path) -> Result<Measured, String>;
}

/// Turns a failed measured command into a reason, a successful one into itself.
pub fn check(what: &str, m: Measured) -> Result<Measured, String> {
    if m.status.success() {
        Ok(m)
    } else {
        Err(format!("{what}: {}", m.reason()))
    }
}

pub fn is_installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

pub fn http_client() -> Result<reqwest::blocking::Client, String> {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| format!("http client: {e}"))
}
