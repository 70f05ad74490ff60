//! `strata restore`: plan, verify, stage, replay, swap (see `strata_backup::restore`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use strata_backup::Progress;
use strata_backup::restore::{
    RestoreFilter, RestoreOptions, RestorePlan, RestoreReport, plan_restore, recover,
    resolve_snapshot, restore,
};

use super::repo::{RepoArgs, fmt_bytes, mb_per_s, progress_bar, runtime};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub(crate) repo: RepoArgs,
    /// Data directory to restore into (replaced atomically; the old one is kept)
    #[arg(long, conflicts_with = "server", required_unless_present = "server")]
    data_dir: Option<PathBuf>,
    /// Restore into the running server at this base URL (e.g. http://127.0.0.1:8480) without
    /// stopping it: a job that imports the selection and publishes it in one step. The server
    /// reads the repository with its own settings (--repo is sent as a URL, never a password)
    #[arg(
        long,
        conflicts_with_all = ["at", "force", "node_id", "format_version", "skip_damaged", "read_data"]
    )]
    pub(crate) server: Option<String>,
    /// Bearer token for --server
    #[arg(long, env = "STRATA_TOKEN", requires = "server")]
    pub(crate) token: Option<String>,
    /// With --server: restore the (one) selected group as a new group of this name, next to
    /// what the server holds now
    #[arg(long, value_name = "NEW", requires = "server")]
    pub(crate) into_group: Option<String>,
    /// With --server: swap existing groups whole for their restored versions
    #[arg(long, requires = "server")]
    pub(crate) replace: bool,
    /// Snapshot id, unique prefix, or `latest`
    #[arg(long, default_value = "latest")]
    pub(crate) snapshot: String,
    /// Point-in-time recovery: restore the data as of TIME (RFC 3339, or a duration ago such
    /// as 15m) from the newest snapshot at or before it plus the archived WAL up to the last
    /// batch committed at or before TIME. Chooses the snapshot itself
    #[arg(long, value_name = "TIME", conflicts_with = "snapshot")]
    at: Option<String>,
    /// Plan and verify only; write nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
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
    /// Write a data directory for this format version: 2 (this release, the default) or 1
    /// (the previous release: rollback after a failed upgrade)
    #[arg(long, value_name = "N")]
    format_version: Option<u32>,
    /// Files downloaded in parallel
    #[arg(long, default_value_t = 8)]
    pub(crate) parallel: usize,
    /// Restore only this group (repeatable; default: every group)
    #[arg(long = "group", value_name = "G")]
    groups: Vec<String>,
    /// Restore only this measure (repeatable; default: every measure)
    #[arg(long = "measure", value_name = "M")]
    measures: Vec<String>,
    /// Restore only series with this tag value (repeatable, ANDed across keys)
    #[arg(long = "tag", value_name = "K=V", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// Restore only points at or after this time (RFC 3339, or ns since the epoch)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    from: Option<i64>,
    /// Restore only points before this time (RFC 3339, or ns since the epoch)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    to: Option<i64>,
    /// Shard count of every restored group (re-partitions the points)
    #[arg(long, value_name = "N")]
    shards: Option<u32>,
    /// Restore everything intact around damaged parts and WAL segments and report exactly
    /// what was skipped (non-zero exit unless --accept-damage)
    #[arg(long)]
    skip_damaged: bool,
    /// With --skip-damaged: exit 0 even when something was skipped
    #[arg(long, requires = "skip_damaged")]
    accept_damage: bool,
    /// Print the plan and result as JSON
    #[arg(long)]
    pub(crate) json: bool,
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected K=V, got {s:?}")),
    }
}

/// RFC 3339 (`2026-01-01T00:00:00Z`) or an integer of ns since the epoch.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(ns) = s.parse::<i64>() {
        return Ok(ns);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time or ns since the epoch ({e})"))?
        .timestamp_nanos_opt()
        .ok_or_else(|| format!("{s:?} is outside the range of ns timestamps"))
}

/// The requested restore was the interrupted one that recovery just completed.
fn report_finished(
    a: &Args,
    data_dir: &std::path::Path,
    done: &strata_backup::restore::SwapOutcome,
) -> anyhow::Result<()> {
    if a.json {
        let v = serde_json::json!({
            "dry_run": false,
            "result": {
                "snapshot": done.snapshot,
                "target": data_dir,
                "rollback": done.rollback,
                "finished_interrupted": true,
            },
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "snapshot {} is restored into {}{}",
            done.snapshot,
            data_dir.display(),
            done.rollback
                .as_ref()
                .map(|r| format!("; previous data in {}", r.display()))
                .unwrap_or_default()
        );
    }
    Ok(())
}

pub(crate) fn filter(a: &Args) -> RestoreFilter {
    RestoreFilter {
        groups: a.groups.clone(),
        measures: a.measures.clone(),
        tags: a.tags.clone(),
        from: a.from,
        to: a.to,
        shards: a.shards,
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    // Bad arguments are refused before anything is touched.
    filter(&a).validate()?;
    if a.server.is_some() {
        return super::restore_online::run(a);
    }
    let Some(data_dir) = a.data_dir.clone() else {
        anyhow::bail!("give --data-dir DIR or --server URL");
    };
    runtime()?.block_on(async {
        // What opening the engine on the directory would do first: finish a swap a crash
        // interrupted (a dry run changes nothing, so it only plans).
        let finished = if a.dry_run {
            None
        } else {
            recover(&data_dir)?
        };
        let repo = Arc::new(a.repo.open().await?);
        if let Some(done) = &finished {
            eprintln!(
                "finished the interrupted restore of snapshot {} into {}",
                done.snapshot,
                data_dir.display()
            );
            // Asked for the snapshot whose restore was just finished: it is done.
            if resolve_snapshot(&repo, &a.snapshot).await? == done.snapshot {
                return report_finished(&a, &data_dir, done);
            }
        }
        let opts = RestoreOptions {
            force: a.force,
            dry_run: a.dry_run,
            read_data: a.read_data,
            node_id: a.node_id.clone(),
            parallelism: a.parallel,
            filter: filter(&a),
            skip_damaged: a.skip_damaged,
            format_version: a.format_version,
        };
        strata_backup::archive::compat::check(a.format_version)?;
        let plan = match &a.at {
            Some(at) => {
                let now = super::pitr::now_ns();
                let at = super::pitr::parse_at(at, now)?;
                strata_backup::archive::pitr::plan_restore_at(
                    &repo,
                    at,
                    now,
                    None,
                    &data_dir,
                    &opts,
                )
                .await?
            }
            None => plan_restore(&repo, &a.snapshot, &data_dir, &opts).await?,
        };
        if let (false, Some(p)) = (a.json, &plan.point_in_time) {
            println!("{}", super::pitr::describe(p));
        }
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
            print_selection(&plan);
        }
        let progress = Arc::new(Progress::default());
        let bar = progress_bar(progress.clone());
        let started = Instant::now();
        let report = restore(repo, &plan, &opts, progress).await?;
        drop(bar);
        let took = started.elapsed();
        if a.json {
            let mut v = serde_json::json!({
                "plan": plan, "dry_run": a.dry_run, "result": report,
                "seconds": took.as_secs_f64(),
            });
            if a.dry_run {
                v["plan"]["objects_to_fetch"] = serde_json::to_value(
                    plan.fetch
                        .iter()
                        .map(|f| serde_json::json!({"object": f.object, "path": f.path, "stored_size": f.stored_size}))
                        .collect::<Vec<_>>(),
                )?;
            }
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else if a.dry_run {
            for f in &plan.fetch {
                println!("  fetch {} {} ({})", f.object, f.path, fmt_bytes(f.stored_size));
            }
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
            print_outcome(&report);
        }
        if a.dry_run && !a.json {
            for s in &report.skipped {
                println!("would skip: {}", strata_backup::restore::damage::describe(s));
            }
        }
        if !report.skipped.is_empty() && !a.accept_damage {
            anyhow::bail!(
                "{} damaged object{} {} left out (listed above); everything intact {}; pass --accept-damage to accept this",
                report.skipped.len(),
                if report.skipped.len() == 1 { "" } else { "s" },
                if a.dry_run { "would be" } else { "were" },
                if a.dry_run { "would be restored" } else { "was restored" }
            );
        }
        Ok(())
    })
}

/// What a fine-grained or re-sharding plan selected.
fn print_selection(plan: &RestorePlan) {
    let Some(sel) = &plan.selective else {
        return;
    };
    for (g, ms) in &sel.groups {
        println!("  group {g}: measures {}", ms.join(", "));
    }
    println!(
        "  {} of {} parts selected: {} of the snapshot's {}{}",
        sel.parts_selected,
        sel.parts_total,
        fmt_bytes(plan.bytes),
        fmt_bytes(plan.snapshot_bytes),
        sel.filter
            .shards
            .map(|n| format!("; re-sharded into {n} shards per group"))
            .unwrap_or_default()
    );
}

/// What was reused from an interrupted run, downloaded and (selectively) written.
fn print_outcome(report: &RestoreReport) {
    let f = &report.fetch;
    if f.reused_files > 0 {
        println!(
            "resumed: reused {} files ({}) already fetched and verified by an interrupted run; downloaded {} files ({})",
            f.reused_files,
            fmt_bytes(f.reused_bytes),
            f.downloaded_files,
            fmt_bytes(f.downloaded_bytes)
        );
    }
    for s in &report.skipped {
        println!("{}", strata_backup::restore::damage::describe(s));
    }
    if let Some(r) = &report.restored {
        println!(
            "restored {} points of {} series in {} measures of {} groups",
            r.points, r.series, r.measures, r.groups
        );
    }
}
