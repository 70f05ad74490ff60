//! `strata restore`: plan, verify, stage, replay, swap (see `strata_backup::restore`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use strata_backup::Progress;
use strata_backup::restore::{RestoreOptions, plan_restore, recover, restore};

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
    /// With --dry-run: download and check every object's contents
    #[arg(long)]
    read_data: bool,
    /// Replace a non-empty data directory (kept as DIR.pre-restore-<time>)
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

pub fn run(a: Args) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        if !a.dry_run
            && let Some(id) = recover(&a.data_dir)?
        {
            eprintln!(
                "finished the interrupted restore of snapshot {id} into {}",
                a.data_dir.display()
            );
        }
        let repo = Arc::new(a.repo.open().await?);
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
