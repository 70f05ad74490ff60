//! `strata show SNAPSHOT`: one snapshot in detail, with the repository's encryption stated.

use strata_backup::diff::summarize;

use super::repo::{RepoArgs, fmt_bytes, fmt_time, runtime};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// Snapshot id, unique prefix, or `latest`
    snapshot: String,
    /// Print the whole manifest as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let repo = a.repo.open().await?;
        let id = repo.resolve(&a.snapshot).await?;
        let m = repo.load_manifest(&id).await?;
        let cfg = repo.config();
        if a.json {
            let v = serde_json::json!({
                "repository": {"id": cfg.id, "encryption": cfg.encryption, "compression": cfg.compression},
                "manifest": m,
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
            return Ok(());
        }
        let stored: u64 = {
            let mut seen = std::collections::HashSet::new();
            m.files
                .iter()
                .filter(|f| seen.insert(&f.object))
                .map(|f| f.stored_size)
                .sum()
        };
        println!("snapshot    {}", m.id);
        println!("time        {}", fmt_time(m.time));
        println!("node        {}", m.node_id);
        println!(
            "kind        {}{}",
            format!("{:?}", m.kind).to_lowercase(),
            m.parent.as_ref().map(|p| format!(" (parent {p})")).unwrap_or_default()
        );
        println!("lsn         {}", m.lsn);
        println!("engine      format {}", m.engine_format);
        println!(
            "encryption  {}{}",
            cfg.encryption,
            if cfg.encrypted() { "" } else { "  (NOT encrypted)" }
        );
        println!("compression {}", cfg.compression);
        println!(
            "files       {} ({}, stored {}), {} parts, {} WAL segments",
            m.stats.files,
            fmt_bytes(m.stats.bytes),
            fmt_bytes(stored),
            m.parts.len(),
            m.wal.len()
        );
        println!(
            "this backup uploaded {} new objects ({}), reused {}",
            m.stats.new_objects,
            fmt_bytes(m.stats.uploaded_bytes),
            m.stats.reused_objects
        );
        for (k, v) in &m.labels {
            println!("label       {k}={v}");
        }
        if let Some(g) = &m.groups {
            println!("covers      groups {}", g.join(", "));
        }
        if let Some(s) = &m.schedule {
            println!("schedule    {s}");
        }
        println!("groups:");
        for (g, s) in summarize(&m) {
            println!(
                "  {g}: {} parts, {} rows, {}; measures [{}]",
                s.parts,
                s.rows,
                fmt_bytes(s.bytes),
                s.measures.join(", ")
            );
        }
        Ok(())
    })
}
