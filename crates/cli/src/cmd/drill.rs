//! `strata drill [SNAPSHOT|latest]`: a restore drill (`strata_backup::drill`). Restores the
//! snapshot into a scratch directory, reads every part back and queries every measure,
//! compares with what the manifest recorded at backup time, removes the scratch directory.
//! Exit 0 only if everything matched; every difference is listed. With `--server URL` the
//! server runs the drill on its own repository (`POST /api/v1/drills`) and this follows the job.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use strata_backup::Progress;
use strata_backup::drill::{DrillOptions, DrillReport};

use super::repo::{RepoArgs, fmt_bytes, progress_bar, runtime};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// Have this running server drill its own repository (base URL, e.g. http://127.0.0.1:8480);
    /// --repo is then only a label
    #[arg(long)]
    server: Option<String>,
    /// Bearer token for --server [default: $STRATA_AUTH_TOKEN]
    #[arg(long, env = "STRATA_AUTH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Snapshot to drill (id, unique prefix or `latest`)
    #[arg(long, default_value = "latest")]
    snapshot: String,
    /// Directory to restore into (a fresh subdirectory is made and removed) [default: the
    /// system's temporary directory]
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// Keep the restored scratch directory
    #[arg(long)]
    keep: bool,
    /// Concurrent downloads
    #[arg(long, default_value_t = 4)]
    parallelism: usize,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let report = match &a.server {
            Some(url) => on_server(url, a.token.as_deref(), &a.snapshot).await?,
            None => {
                let repo = Arc::new(a.repo.open().await?);
                let progress = Arc::new(Progress::default());
                let bar = (!a.json).then(|| progress_bar(progress.clone()));
                let opts = DrillOptions {
                    scratch: a.scratch.clone(),
                    keep: a.keep,
                    parallelism: a.parallelism,
                };
                let r = strata_backup::drill::drill(repo, &a.snapshot, &opts, progress).await?;
                drop(bar);
                r
            }
        };
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_report(&report);
        }
        if !report.passed {
            bail!(
                "drill of snapshot {} failed: {} differences",
                report.snapshot,
                report.differences.len()
            );
        }
        Ok(())
    })
}

fn print_report(r: &DrillReport) {
    println!(
        "snapshot {} (node {}): restored {} files, {} in {:.2} s; checked {} parts in {:.2} s",
        r.snapshot,
        r.node_id,
        r.files,
        fmt_bytes(r.bytes),
        r.restore_s,
        r.parts,
        r.check_s
    );
    for m in &r.measures {
        let query = match (m.query_series, m.query_points) {
            (Some(s), Some(p)) => format!("query: {s} series, {p} points"),
            _ => "query: not run".into(),
        };
        println!(
            "  {} {}/{}: {} parts, {} series, {} points recorded; {}",
            if m.matched { "ok      " } else { "MISMATCH" },
            m.group,
            m.measure,
            m.parts,
            m.series,
            m.points,
            query
        );
    }
    for d in &r.differences {
        println!("DIFFERENCE {d}");
    }
    if r.kept {
        println!("scratch directory kept: {}", r.scratch.display());
    }
    if r.passed {
        println!("drill passed");
    }
}

/// Starts a drill job on the server and waits for its report.
async fn on_server(url: &str, token: Option<&str>, snapshot: &str) -> anyhow::Result<DrillReport> {
    let base = url.trim_end_matches('/');
    let client = reqwest::Client::new();
    let auth = |r: reqwest::RequestBuilder| match token {
        Some(t) => r.bearer_auth(t),
        None => r,
    };
    let resp = auth(client.post(format!("{base}/api/v1/drills")))
        .json(&serde_json::json!({ "snapshot": snapshot }))
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {base}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "server refused the drill ({status}): {}",
            body["error"].as_str().unwrap_or("no reason given")
        );
    }
    let id = body["job"]
        .as_str()
        .context("the server's answer names no job")?
        .to_string();
    loop {
        let job: serde_json::Value = auth(client.get(format!("{base}/api/v1/jobs/{id}")))
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {base}"))?
            .json()
            .await
            .context("the server's job answer is not valid")?;
        if job["state"] != "running" {
            return match job.get("detail").filter(|d| !d.is_null()) {
                Some(d) => serde_json::from_value(d.clone())
                    .context("the server's drill report is not valid"),
                None => bail!(
                    "drill job {id} {}: {}",
                    job["state"].as_str().unwrap_or("ended"),
                    job["error"].as_str().unwrap_or("no reason given")
                ),
            };
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}
