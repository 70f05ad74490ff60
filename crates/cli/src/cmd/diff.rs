//! `strata diff A B`: parts and bytes added and removed between two snapshots, per group and
//! measure.

use super::repo::{RepoArgs, fmt_bytes, runtime};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// The older snapshot (id, prefix or `latest`)
    snapshot_a: String,
    /// The newer snapshot
    snapshot_b: String,
    /// Print the difference as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let repo = a.repo.open().await?;
        let ma = repo
            .load_manifest(&repo.resolve(&a.snapshot_a).await?)
            .await?;
        let mb = repo
            .load_manifest(&repo.resolve(&a.snapshot_b).await?)
            .await?;
        let d = strata_backup::diff::diff(&ma, &mb);
        if a.json {
            println!("{}", serde_json::to_string_pretty(&d)?);
            return Ok(());
        }
        println!("{} -> {}", d.from, d.to);
        println!(
            "{:<32}  {:>8}  {:>12}  {:>8}  {:>12}",
            "group/measure", "+parts", "+bytes", "-parts", "-bytes"
        );
        for (k, c) in &d.by_measure {
            println!(
                "{:<32}  {:>8}  {:>12}  {:>8}  {:>12}",
                k,
                c.parts_added,
                fmt_bytes(c.bytes_added),
                c.parts_removed,
                fmt_bytes(c.bytes_removed)
            );
        }
        let t = &d.total;
        println!(
            "{:<32}  {:>8}  {:>12}  {:>8}  {:>12}",
            "total (parts)",
            t.parts_added,
            fmt_bytes(t.bytes_added),
            t.parts_removed,
            fmt_bytes(t.bytes_removed)
        );
        println!("new content in {}: {}", d.to, fmt_bytes(d.new_object_bytes));
        Ok(())
    })
}
