//! `strata backup`: the backup sequence of `strata_backup::backup::run` on a snapshot of a
//! stopped data directory (opened here) or of a running server (`POST /api/v1/snapshots`,
//! same machine: the files are read where the server pinned them). `--json` reports the
//! seconds of each phase (`timings`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use strata_backup::backup::{
    BackupOptions, PhaseTimings, parse_labels, run as run_backup, run_taken,
};
use strata_backup::snapshot_doc::AnyDoc;
use strata_backup::source::{EngineSource, SnapshotSource};
use strata_backup::{Manifest, Progress, Repository};
use strata_engine::backup_api::{FileSource, Snapshot};
use strata_engine::{Engine, EngineOptions};

use super::repo::{RepoArgs, fmt_bytes, mb_per_s, progress_bar, runtime};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// Data directory of a stopped server
    #[arg(long, conflicts_with = "server", required_unless_present = "server")]
    data_dir: Option<PathBuf>,
    /// Base URL of a running server on this machine, e.g. http://127.0.0.1:8480
    #[arg(long)]
    server: Option<String>,
    /// Bearer token for --server
    #[arg(long, env = "STRATA_AUTH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read and verify every file again and re-upload anything missing or damaged
    #[arg(long)]
    full: bool,
    /// Back up only this group (repeatable); the snapshot records the groups it covers
    #[arg(long = "group", value_name = "G")]
    groups: Vec<String>,
    /// Label the snapshot, K=V (repeatable)
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Files uploaded in parallel
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
    /// Lower this backup's CPU priority by N (as nice(1) does, 0-19) so that it yields the
    /// CPU to a server on the same machine; 0 keeps the priority it was started with
    #[arg(long, env = "STRATA_BACKUP_NICE", default_value_t = 10,
          value_parser = clap::value_parser!(u8).range(0..=19))]
    nice: u8,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    // Before the runtime exists: every thread it starts inherits the priority.
    lower_priority(a.nice);
    runtime()?.block_on(run_async(a))
}

/// Adds `n` to the process's nice value (Linux threads inherit it from their creator). Not
/// being allowed to is no reason to fail a backup: it is logged and the backup goes on.
fn lower_priority(n: u8) {
    if n == 0 {
        return;
    }
    if let Err(e) = rustix::process::nice(i32::from(n)) {
        tracing::warn!(error = %e, "could not lower the backup's priority");
    }
}

async fn run_async(a: Args) -> anyhow::Result<()> {
    let opts = BackupOptions {
        full: a.full,
        labels: parse_labels(&a.labels)?,
        parallelism: a.parallel,
        groups: a.groups.iter().cloned().collect(),
        schedule: None,
    };
    let started = Instant::now();
    // Opening the repository derives its key from the password (Argon2id): reported apart,
    // it is a fixed cost per invocation that has nothing to do with the data. With --server
    // the snapshot is taken meanwhile (the server does that work); a stopped data directory
    // is opened only once the repository opened, so that a wrong password touches nothing.
    let settings = a.repo.settings();
    let opening = tokio::spawn(async move {
        let repo = settings.open().await;
        (repo, started.elapsed().as_secs_f64())
    });
    let progress = Arc::new(Progress::default());
    let bar = progress_bar(progress.clone());
    let mut t = Timings::default();
    let manifest = match (&a.data_dir, &a.server) {
        (Some(dir), _) => {
            let repo = opened(opening, &mut t).await?;
            from_data_dir(&repo, dir, &opts, progress, &mut t).await?
        }
        (None, Some(url)) => {
            let source = ServerSource {
                client: reqwest::Client::new(),
                base: url.trim_end_matches('/').to_string(),
                token: a.token.clone(),
            };
            from_server(&source, opening, &opts, progress, &mut t).await?
        }
        (None, None) => bail!("give --data-dir DIR or --server URL"),
    };
    drop(bar);
    report(&manifest, started, &t, a.json)
}

type Opening = tokio::task::JoinHandle<(strata_backup::Result<Repository>, f64)>;

/// The repository being opened by `opening`, and the seconds that took in `t.unlock_s`.
async fn opened(opening: Opening, t: &mut Timings) -> anyhow::Result<Arc<Repository>> {
    let (repo, secs) = opening.await.context("opening the repository")?;
    t.unlock_s = secs;
    Ok(Arc::new(repo?))
}

/// Seconds per phase, for `--json`.
#[derive(Debug, Default, serde::Serialize)]
struct Timings {
    /// Opening the repository, including the key derivation.
    unlock_s: f64,
    /// Opening the data directory (--data-dir).
    open_s: f64,
    /// Snapshot (over HTTP with --server), list, plan, upload, manifest, release.
    #[serde(flatten)]
    backup: PhaseTimings,
    /// Closing the data directory (--data-dir).
    close_s: f64,
}

fn secs_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

async fn from_data_dir(
    repo: &Arc<Repository>,
    dir: &std::path::Path,
    opts: &BackupOptions,
    progress: Arc<Progress>,
    t: &mut Timings,
) -> anyhow::Result<Arc<Manifest>> {
    let clock = Instant::now();
    if !dir.is_dir() {
        bail!("data directory {} does not exist", dir.display());
    }
    let mut eo = EngineOptions::new(dir);
    eo.background = false;
    let engine = match Engine::open(eo) {
        Ok(e) => Arc::new(e),
        Err(strata_engine::Error::Locked { .. }) => bail!(
            "data directory {} is in use by a running server; back it up with --server URL",
            dir.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", dir.display())),
    };
    t.open_s = secs_since(clock);
    let result = run_backup(
        &EngineSource::new(engine.clone()),
        repo.clone(),
        opts,
        progress,
    )
    .await;
    let clock = Instant::now();
    let closed = match Arc::try_unwrap(engine) {
        Ok(e) => e.close().context("closing the data directory"),
        Err(_) => Ok(()),
    };
    t.close_s = secs_since(clock);
    let (m, phases) = result?;
    t.backup = phases;
    closed?;
    Ok(m)
}

/// Snapshots of a server on this machine, over its HTTP API.
struct ServerSource {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl ServerSource {
    fn auth(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn take_checked(&self) -> anyhow::Result<Snapshot> {
        let base = &self.base;
        let resp = self
            .auth(
                self.client
                    .post(format!("{base}/api/v1/snapshots?version=2")),
            )
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {base}"))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            bail!("server refused the snapshot ({status}): {}", body.trim());
        }
        // Version 2 (compact) from servers that know it; older ones ignore the parameter and
        // answer version 1.
        let body = resp
            .bytes()
            .await
            .context("the server's snapshot answer was cut off")?;
        let doc = AnyDoc::from_json(&body)?;
        let id = doc.id().to_string();
        let snap = match doc.into_snapshot() {
            Ok(s) => s,
            Err(e) => {
                let _ = self.release(&id).await;
                return Err(e.into());
            }
        };
        let elsewhere = snap.files.iter().find_map(|f| match &f.source {
            FileSource::Path(p) if !p.exists() => Some(p.clone()),
            _ => None,
        });
        if let Some(p) = elsewhere {
            let _ = self.release(&snap.id).await;
            bail!(
                "snapshot file {} is not on this machine; run strata backup on the server's host",
                p.display()
            );
        }
        Ok(snap)
    }
}

#[async_trait::async_trait]
impl SnapshotSource for ServerSource {
    async fn take(&self) -> strata_backup::Result<Snapshot> {
        self.take_checked()
            .await
            .map_err(|e| strata_backup::Error::Refused(format!("{e:#}")))
    }

    async fn release(&self, id: &str) -> strata_backup::Result<()> {
        let base = &self.base;
        let resp = self
            .auth(self.client.delete(format!("{base}/api/v1/snapshots/{id}")))
            .send()
            .await
            .map_err(|e| strata_backup::Error::Refused(format!("releasing snapshot {id}: {e}")))?;
        if !resp.status().is_success() {
            eprintln!(
                "warning: could not release server snapshot {id} ({}); it expires on its own",
                resp.status()
            );
        }
        Ok(())
    }
}

/// Takes the server's snapshot while the repository opens (the key derivation runs on this
/// machine's CPU, the snapshot on the server's), then backs it up. A repository that does not
/// open releases the snapshot again.
async fn from_server(
    source: &ServerSource,
    opening: Opening,
    opts: &BackupOptions,
    progress: Arc<Progress>,
    t: &mut Timings,
) -> anyhow::Result<Arc<Manifest>> {
    progress.set_phase("taking snapshot");
    let take = async {
        let clock = Instant::now();
        let snap = source.take().await;
        (snap, secs_since(clock))
    };
    let ((snap, snapshot_s), repo) = tokio::join!(take, opened(opening, t));
    let snap = snap?;
    let repo = match repo {
        Ok(r) => r,
        Err(e) => {
            let _ = source.release(&snap.id).await;
            return Err(e);
        }
    };
    let (m, phases) = run_taken(source, &snap, snapshot_s, repo, opts, progress).await?;
    t.backup = phases;
    Ok(m)
}

fn report(m: &Manifest, started: Instant, t: &Timings, json: bool) -> anyhow::Result<()> {
    let took = started.elapsed();
    if json {
        let v = serde_json::json!({
            "snapshot": m.id,
            "kind": m.kind,
            "parent": m.parent,
            "groups": m.groups,
            "lsn": m.lsn,
            "stats": m.stats,
            "seconds": took.as_secs_f64(),
            "timings": t,
            // The priority the backup ran at (see --nice).
            "nice": rustix::process::getpriority_process(None).ok(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let s = &m.stats;
    println!(
        "snapshot {} saved ({:?}, lsn {}): {} files, {}; new {} objects ({} read, {} uploaded), reused {}; {:.1}s, {:.1} MB/s",
        m.id,
        m.kind,
        m.lsn,
        s.files,
        fmt_bytes(s.bytes),
        s.new_objects,
        fmt_bytes(s.new_bytes),
        fmt_bytes(s.uploaded_bytes),
        s.reused_objects,
        took.as_secs_f64(),
        mb_per_s(s.bytes, took)
    );
    Ok(())
}
