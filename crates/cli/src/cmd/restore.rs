//! `strata restore`: plan, verify, stage, replay, swap (see `strata_backup::restore`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use strata_backup::Progress;
use strata_backup::restore::{RestoreOptions, plan_restore, recover, resolve_snapshot, restore};

use super::repo::{RepoArgs, fmt_bytes, mb_per_s, progress_bar, runtime};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// Data directory to restore into (replaced atomically; the old one is kept)
    #[arg(long)]
    data_dir: PathBuf,
    /// Snapshot id, unique prefix, or `latest`
    #[arg(long, default_value = "latest")]
    snapshot: String,
    /// Plan and verify only; write nothing
    #[arg(long)]
    dry_run: bool,
    /// Download and check every object's contents before writing anything (with or without
    /// --dry-run; without it, only each object's presence and size are checked first)
    #[arg(long)]
    read_data: bool,
    /// Replace an existing Strata data directory (kept as DIR.pre-restore-<time>). Only an
    /// empty directory or a data directory is ever replaced; never the repository or a
    /// directory holding it
    #[arg(long)]
    force: bool,
    /// Node id to record in the restored directory (restore onto another node)
    #[arg(long)]
    node_id: Option<String>,
    /// Files downloaded in parallel
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Print the plan and result as JSON
    #[arg(long)]
    json: bool,
}

/// The requested restore was the interrupted one that recovery just completed.
fn report_finished(a: &Args, done: &strata_backup::restore::SwapOutcome) -> anyhow::Result<()> {
    if a.json {
        let v = serde_json::json!({
            "dry_run": false,
            "result": {
                "snapshot": done.snapshot,
                "target": a.data_dir,
                "rollback": done.rollback,
                "finished_interrupted": true,
            },
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "snapshot {} is restored into {}{}",
            done.snapshot,
            a.data_dir.display(),
            done.rollback
                .as_ref()
                .map(|r| format!("; previous data in {}", r.display()))
                .unwrap_or_default()
        );
    }
    Ok(())
}

pub fn run(a: Args) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        // What opening the engine on the directory would do first: finish a swap a crash
        // interrupted (a dry run changes nothing, so it only plans).
        let finished = if a.dry_run {
            None
        } else {
            recover(&a.data_dir)?
        };
        let repo = Arc::new(a.repo.open().await?);
        if let Some(done) = &finished {
            eprintln!(
                "finished the interrupted restore of snapshot {} into {}",
                done.snapshot,
                a.data_dir.display()
            );
            // Asked for the snapshot whose restore was just finished: it is done.
            if resolve_snapshot(&repo, &a.snapshot).await? == done.snapshot {
                return report_finished(&a, done);
            }
        }
        let opts = RestoreOptions {
            force: a.force,
            dry_run: a.dry_run,
            read_data: a.read_data,
            node_id: a.node_id.clone(),
            parallelism: a.parallel,
        };
        let plan = plan_restore(&repo, &a.snapshot, &a.data_dir, &opts).await?;
        if !a.json {
            println!(
                "plan: snapshot {} -> {}: {} files, {} ({} objects, {} to download) via {}{}",
                plan.snapshot,
                plan.target.display(),
                plan.files,
                fmt_bytes(plan.bytes),
                plan.objects,
                fmt_bytes(plan.stored_bytes),
                plan.staging.display(),
                plan.rollback
                    .as_ref()
                    .map(|r| format!("; current data kept as {}", r.display()))
                    .unwrap_or_default()
            );
        }
        let progress = Arc::new(Progress::default());
        let bar = progress_bar(progress.clone());
        let started = Instant::now();
        let report = restore(repo, &plan, &opts, progress).await?;
        drop(bar);
        let took = started.elapsed();
        if a.json {
            let v = serde_json::json!({
                "plan": plan, "dry_run": a.dry_run, "result": report,
                "seconds": took.as_secs_f64(),
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else if a.dry_run {
            println!(
                "dry run: every object is present{}; nothing was written",
                if a.read_data {
                    " and intact"
                } else {
                    " with its recorded size"
                }
            );
        } else {
            println!(
                "restored snapshot {} into {} ({}, {:.1}s, {:.1} MB/s){}",
                report.snapshot,
                report.target.display(),
                fmt_bytes(report.bytes),
                took.as_secs_f64(),
                mb_per_s(report.bytes, took),
                report
                    .rollback
                    .as_ref()
                    .map(|r| format!("; previous data in {}", r.display()))
                    .unwrap_or_default()
            );
        }
        Ok(())
    })
}
