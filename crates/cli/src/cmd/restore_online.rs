//! `strata restore --server URL …`: an online restore through the server's
//! `POST /api/v1/restores` (see `strata_server::restores`), followed to its end. The server
//! plans it first (bad input is one line and changes nothing), runs it as a job, and
//! publishes the restored groups in one step; this command prints the plan, shows the job's
//! progress and exits non-zero unless the job succeeded. `--dry-run` prints the server's plan
//! and starts nothing. Ctrl-C cancels the job (nothing changes unless it was already
//! publishing).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use strata_backup::Progress;

use super::repo::{fmt_bytes, progress_bar, runtime};
use super::restore::{Args, filter};

/// The repository as the server should read it: a plain path made absolute (the server
/// runs elsewhere in the file system), URLs as given.
fn repo_url(repo: &str) -> String {
    if repo.contains("://") {
        return repo.to_string();
    }
    std::path::absolute(repo)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| repo.to_string())
}

fn body(a: &Args) -> Value {
    let f = filter(a);
    let tags: serde_json::Map<String, Value> = f
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "repo": repo_url(&a.repo.repo),
        "snapshot": a.snapshot,
        "groups": f.groups,
        "measures": f.measures,
        "tags": tags,
        "from": f.from,
        "to": f.to,
        "shards": f.shards,
        "into_group": a.into_group,
        "replace": a.replace,
        "dry_run": a.dry_run,
        "parallel": a.parallel,
    })
}

struct Server {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl Server {
    fn req(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Sends a request; a non-2xx answer is the server's one-line error.
    async fn call(&self, r: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = self
            .req(r)
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = v["error"].as_str().map_or(text.trim(), |e| e);
            bail!("the server refused the restore ({status}): {msg}");
        }
        Ok(v)
    }
}

fn print_plan(plan: &Value) {
    println!(
        "plan: snapshot {} into the server: {} files, {} ({} of the snapshot's {}; {} of {} parts)",
        plan["snapshot"].as_str().unwrap_or("?"),
        plan["files"],
        fmt_bytes(plan["bytes"].as_u64().unwrap_or(0)),
        fmt_bytes(plan["stored_bytes"].as_u64().unwrap_or(0)),
        fmt_bytes(plan["snapshot_bytes"].as_u64().unwrap_or(0)),
        plan["parts_selected"],
        plan["parts_total"],
    );
    for g in plan["groups"].as_array().into_iter().flatten() {
        let measures: Vec<&str> = g["measures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "  {} group {} -> {} (measures {}){}",
            g["action"].as_str().unwrap_or("?"),
            g["source"].as_str().unwrap_or("?"),
            g["target"].as_str().unwrap_or("?"),
            measures.join(", "),
            g["shards"]
                .as_u64()
                .map(|n| format!(", {n} shards"))
                .unwrap_or_default()
        );
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let Some(base) = a
        .server
        .as_deref()
        .map(|s| s.trim_end_matches('/').to_string())
    else {
        bail!("give --server URL");
    };
    let srv = Server {
        base,
        token: a.token.clone(),
        client: reqwest::Client::new(),
    };
    runtime()?.block_on(async {
        let url = format!("{}/api/v1/restores", srv.base);
        let started = srv.call(srv.client.post(&url).json(&body(&a))).await?;
        if a.dry_run {
            if a.json {
                println!("{}", serde_json::to_string_pretty(&started)?);
            } else {
                print_plan(&started["plan"]);
                println!("dry run: nothing was started");
            }
            return Ok(());
        }
        let id = started["job"]
            .as_str()
            .context("the server's answer names no job")?
            .to_string();
        if !a.json {
            print_plan(&started["plan"]);
            println!("restore job {id} started");
        }
        let progress = Arc::new(Progress::default());
        let bar = progress_bar(progress.clone());
        let clock = Instant::now();
        let job = follow(&srv, &id, &progress).await;
        drop(bar);
        let job = job?;
        let state = job["state"].as_str().unwrap_or("?");
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"job": job, "seconds": clock.elapsed().as_secs_f64()}))?
            );
        }
        if state != "succeeded" {
            bail!(
                "restore job {id} {state}: {}",
                job["error"].as_str().unwrap_or("no error recorded")
            );
        }
        if !a.json {
            let r = &job["detail"]["result"];
            println!(
                "restored {} points of {} series in {} measures into {} in {:.1}s (published at LSN {}; {} parts)",
                r["restored"]["points"],
                r["restored"]["series"],
                r["restored"]["measures"],
                r["adopted"]["groups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                clock.elapsed().as_secs_f64(),
                r["adopted"]["lsn"],
                r["adopted"]["parts"],
            );
            let reused = r["fetch"]["reused_files"].as_u64().unwrap_or(0);
            if reused > 0 {
                println!(
                    "resumed: reused {reused} files ({}) fetched by an interrupted run",
                    fmt_bytes(r["fetch"]["reused_bytes"].as_u64().unwrap_or(0))
                );
            }
        }
        Ok(())
    })
}

/// Polls the job until it ends, mirroring its progress; Ctrl-C asks the server to cancel.
async fn follow(srv: &Server, id: &str, progress: &Progress) -> anyhow::Result<Value> {
    let url = format!("{}/api/v1/restores/{id}", srv.base);
    let mut cancel_sent = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let job = srv.call(srv.client.get(&url)).await?;
        if job["state"].as_str() != Some("running") {
            return Ok(job);
        }
        let p = &job["progress"];
        progress.set_phase(p["phase"].as_str().unwrap_or(""));
        for (field, v) in [
            (&progress.bytes_total, &p["bytes_total"]),
            (&progress.bytes_done, &p["bytes_done"]),
            (&progress.files_total, &p["files_total"]),
            (&progress.files_done, &p["files_done"]),
        ] {
            field.store(v.as_u64().unwrap_or(0), Ordering::Relaxed);
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
            r = &mut ctrl_c, if !cancel_sent => {
                if r.is_ok() {
                    eprintln!("cancelling restore job {id}…");
                    srv.call(srv.client.delete(&url)).await?;
                    cancel_sent = true;
                }
            }
        }
    }
}
