//! `strata snapshots`: every snapshot of a repository, oldest first.

use super::repo::{RepoArgs, fmt_bytes, fmt_time, runtime};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// Only snapshots written by this node (its node id)
    #[arg(long, value_name = "NODE_ID")]
    node: Option<String>,
    /// Print the list as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let repo = a.repo.open().await?;
        let (mut ms, bad) = repo.manifests().await?;
        let listing = strata_backup::archive::window::ArchiveListing::load(&repo).await?;
        let windows = strata_backup::archive::window::Windows::compute(&listing, &ms);
        if let Some(node) = &a.node {
            ms.retain(|m| &m.node_id == node);
        }
        if a.json {
            let v: Vec<_> = ms
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "id": m.id, "time": m.recorded_time(), "node_id": m.node_id,
                        "kind": m.kind, "parent": m.parent, "lsn": m.lsn,
                        "files": m.stats.files, "bytes": m.stats.bytes,
                        "labels": m.labels, "groups": m.groups, "schedule": m.schedule,
                    })
                })
                .collect();
            let damaged: Vec<_> = bad
                .iter()
                .map(|(id, e)| serde_json::json!({"id": id, "error": e.to_string()}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"snapshots": v, "damaged": damaged,
                        "pitr": super::pitr::windows_json(&windows)})
                )?
            );
            return Ok(());
        }
        println!(
            "{:<16}  {:<23}  {:<11}  {:<12}  {:>7}  {:>10}  labels",
            "id", "time", "kind", "node", "files", "size"
        );
        for m in &ms {
            let labels: Vec<String> = m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "{:<16}  {:<23}  {:<11}  {:<12}  {:>7}  {:>10}  {}",
                m.id,
                fmt_time(m.time),
                format!("{:?}", m.kind).to_lowercase(),
                m.node_id,
                m.stats.files,
                fmt_bytes(m.stats.bytes),
                labels.join(",")
            );
        }
        for (id, e) in &bad {
            println!("{id:<16}  DAMAGED: {e}");
        }
        println!("{} snapshots", ms.len());
        super::pitr::print_windows(&windows);
        Ok(())
    })
}
