//! `strata verify [SNAPSHOT|--all] [--read-data]`: exit 0 only when everything checked is
//! intact; otherwise each damaged object is listed with what it affects.

use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use strata_backup::Progress;

use super::repo::{RepoArgs, fmt_bytes, mb_per_s, progress_bar, runtime};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// One snapshot (id, prefix or `latest`); every snapshot when omitted
    #[arg(conflicts_with = "all")]
    snapshot: Option<String>,
    /// Every snapshot (the default)
    #[arg(long)]
    all: bool,
    /// Download, decrypt and check the digest of every object
    #[arg(long)]
    read_data: bool,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let repo = a.repo.open().await?;
        let ids = match &a.snapshot {
            Some(s) => Some(vec![repo.resolve(s).await?]),
            None => None,
        };
        let progress = Arc::new(Progress::default());
        let bar = progress_bar(progress.clone());
        let started = Instant::now();
        let report = strata_backup::verify::verify(&repo, ids, a.read_data, &progress).await?;
        drop(bar);
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            for d in &report.damage {
                println!("DAMAGED {}: {}", d.object, d.problem);
                for x in &d.affects {
                    println!("  snapshot {} file {}: {}", x.snapshot, x.file, x.what);
                }
            }
            println!(
                "checked {} snapshots, {} objects{}",
                report.snapshots.len(),
                report.objects_checked,
                if a.read_data {
                    format!(
                        ", read {} ({:.1} MB/s)",
                        fmt_bytes(report.bytes_read),
                        mb_per_s(report.bytes_read, started.elapsed())
                    )
                } else {
                    " (structure only; --read-data checks contents)".into()
                }
            );
        }
        if !report.ok() {
            bail!(
                "{} damaged objects affect snapshots {}",
                report.damage.len(),
                report.damaged_snapshots().join(", ")
            );
        }
        if !a.json {
            println!("no damage found");
        }
        Ok(())
    })
}
