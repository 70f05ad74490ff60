//! `strata drill [SNAPSHOT|latest]`: a restore drill (`strata_backup::drill`). Restores the
//! snapshot into a scratch directory, reads every part back and queries every measure,
//! compares with what the manifest recorded at backup time, removes the scratch directory.
//! Exit 0 only if everything matched; every difference is listed.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::bail;
use strata_backup::Progress;
use strata_backup::drill::{DrillOptions, DrillReport};

use super::repo::{RepoArgs, fmt_bytes, progress_bar, runtime};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,
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
        let repo = Arc::new(a.repo.open().await?);
        let progress = Arc::new(Progress::default());
        let bar = (!a.json).then(|| progress_bar(progress.clone()));
        let opts = DrillOptions {
            scratch: a.scratch.clone(),
            keep: a.keep,
            parallelism: a.parallelism,
        };
        let report = strata_backup::drill::drill(repo, &a.snapshot, &opts, progress).await?;
        drop(bar);
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
