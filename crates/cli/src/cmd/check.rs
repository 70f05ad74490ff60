//! `strata check --data-dir DIR [--json]`: read every file of a data directory or snapshot
//! against its checksums and structure, without opening it for writing. Exit 0 only when
//! nothing is damaged; each damaged file is named with what is wrong.

use std::path::PathBuf;

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct Args {
    /// Data directory or snapshot directory to check (never modified, no lock taken)
    #[arg(long)]
    data_dir: PathBuf,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let report = strata_engine::check::check_dir(&a.data_dir)
        .with_context(|| format!("cannot check {}", a.data_dir.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in &report.damaged {
            println!("DAMAGED {}: {}", f.path.display(), f.detail);
        }
        for f in &report.notes {
            println!("note {}: {}", f.path.display(), f.detail);
        }
        println!(
            "checked {} files ({} bytes) in {}",
            report.files_checked,
            report.bytes_checked,
            a.data_dir.display()
        );
    }
    if !report.ok() {
        bail!(
            "{} damaged: {}",
            a.data_dir.display(),
            report
                .damaged
                .iter()
                .map(|f| f.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !a.json {
        println!("no damage found");
    }
    Ok(())
}
