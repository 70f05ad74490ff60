//! `strata prune`: retention policy, then garbage collection after a grace period.

use std::time::Duration;

use strata_backup::prune::{RetentionPolicy, plan_prune, prune};

use super::repo::{RepoArgs, fmt_bytes, runtime};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// Keep the N newest snapshots
    #[arg(long)]
    keep_last: Option<usize>,
    /// Keep the newest snapshot of each of the last N hours that have one
    #[arg(long)]
    keep_hourly: Option<usize>,
    /// ... of each of the last N days
    #[arg(long)]
    keep_daily: Option<usize>,
    /// ... of each of the last N ISO weeks
    #[arg(long)]
    keep_weekly: Option<usize>,
    /// ... of each of the last N months
    #[arg(long)]
    keep_monthly: Option<usize>,
    /// Keep every snapshot recorded within this long of the newest, e.g. 7d, 36h
    #[arg(long)]
    keep_within: Option<String>,
    /// An unreferenced object is deleted once it was marked unreferenced at least this long
    /// ago (and is still unreferenced); 0s marks and deletes in one run
    #[arg(long, default_value = "1h")]
    grace: String,
    /// Allow a policy that removes every snapshot (e.g. --keep-last 0); refused without it
    #[arg(long)]
    allow_empty: bool,
    /// Show what would be removed; change nothing
    #[arg(long)]
    dry_run: bool,
    /// Print the plan and result as JSON
    #[arg(long)]
    json: bool,
}

fn duration(s: &str, what: &str) -> anyhow::Result<Duration> {
    strata_engine::duration::parse(s).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let policy = RetentionPolicy {
        keep_last: a.keep_last,
        keep_hourly: a.keep_hourly,
        keep_daily: a.keep_daily,
        keep_weekly: a.keep_weekly,
        keep_monthly: a.keep_monthly,
        keep_within: a
            .keep_within
            .as_deref()
            .map(|s| duration(s, "--keep-within"))
            .transpose()?,
        allow_empty: a.allow_empty,
    };
    let grace = duration(&a.grace, "--grace")?;
    runtime()?.block_on(async {
        let repo = a.repo.open().await?;
        let plan = plan_prune(&repo, &policy, grace).await?;
        if !a.json {
            for d in &plan.decisions {
                if d.keep {
                    println!(
                        "keep   {}  {}  ({})",
                        d.id,
                        d.time.format("%Y-%m-%d %H:%M:%S"),
                        d.reasons.join(", ")
                    );
                } else {
                    println!("remove {}  {}", d.id, d.time.format("%Y-%m-%d %H:%M:%S"));
                }
            }
            println!(
                "{} objects ({}) become unreferenced{}",
                plan.objects_to_remove,
                fmt_bytes(plan.bytes_to_remove),
                if plan.objects_in_grace > 0 {
                    format!(
                        "; {} more are younger than the grace period and kept",
                        plan.objects_in_grace
                    )
                } else {
                    String::new()
                }
            );
        }
        if a.dry_run {
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"plan": plan, "dry_run": true})
                    )?
                );
            } else {
                println!("dry run: nothing removed");
            }
            return Ok(());
        }
        let report = prune(&repo, &plan).await?;
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"plan": plan, "result": report}))?
            );
        } else {
            println!(
                "removed {} snapshots and {} objects ({}); {} objects newly marked unreferenced, {} wait out the grace period",
                report.snapshots_removed,
                report.objects_removed,
                fmt_bytes(report.bytes_removed),
                report.objects_marked,
                report.objects_in_grace
            );
            if let Some(why) = &report.deferred {
                println!("no object deleted this time: {why}");
            }
        }
        Ok(())
    })
}
