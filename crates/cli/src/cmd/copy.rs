//! `strata copy --from R1 --to R2 [SNAPSHOT…|--schedule NAME]`: copy snapshots to a second
//! repository (other keys, other back end), incrementally and verifying as it goes
//! (`strata_backup::copy`). Without snapshots, every snapshot of the source is copied.
//!
//! The source is reached with the usual repository flags (`--from` is `--repo`); the target
//! with `--to-*` flags, and its password from `--to-password-file`, else
//! `STRATA_REPO_PASSWORD_TO`, else the source's.

use std::path::PathBuf;

use strata_backup::Progress;
use strata_backup::settings::RepoSettings;

use super::repo::{fmt_bytes, progress_bar, runtime};

#[derive(clap::Args)]
pub struct Args {
    /// Source repository
    #[arg(long)]
    from: String,
    /// File whose first line is the source's password [default: $STRATA_REPO_PASSWORD]
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Target repository
    #[arg(long)]
    to: String,
    /// File whose first line is the target's password [default: $STRATA_REPO_PASSWORD_TO,
    /// else the source's]
    #[arg(long)]
    to_password_file: Option<PathBuf>,
    /// S3 endpoint of the target [default: $AWS_ENDPOINT]
    #[arg(long)]
    to_endpoint: Option<String>,
    /// S3 region of the target [default: $AWS_REGION]
    #[arg(long)]
    to_region: Option<String>,
    /// S3 path-style requests to the target
    #[arg(long)]
    to_path_style: bool,
    /// Allow a plain http:// target endpoint
    #[arg(long)]
    to_allow_http: bool,
    /// Copy the snapshots a server schedule made (by name)
    #[arg(long, conflicts_with = "snapshots")]
    schedule: Option<String>,
    /// Snapshots to copy (ids, unique prefixes or `latest`) [default: all]
    snapshots: Vec<String>,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

fn target_password(a: &Args) -> anyhow::Result<Option<PathBuf>> {
    if a.to_password_file.is_some() {
        return Ok(a.to_password_file.clone());
    }
    Ok(None)
}

pub fn run(a: Args) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let source = RepoSettings {
            password_file: a.password_file.clone(),
            ..RepoSettings::new(&a.from)
        };
        let from = source.open().await?;
        let target = RepoSettings {
            password_file: target_password(&a)?,
            endpoint: a.to_endpoint.clone(),
            region: a.to_region.clone(),
            path_style: a.to_path_style,
            allow_http: a.to_allow_http,
            ..RepoSettings::new(&a.to)
        };
        let to = match (
            &target.password_file,
            std::env::var("STRATA_REPO_PASSWORD_TO").ok().filter(|p| !p.is_empty()),
        ) {
            (None, Some(pw)) => {
                let store = strata_backup::store::open(&target.url, &target.store_options()?, false)?;
                strata_backup::Repository::open(store, &target.url, Some(&pw)).await?
            }
            _ => target.open().await?,
        };
        let (ms, _) = from.manifests().await?;
        let ids: Vec<String> = if let Some(s) = &a.schedule {
            ms.iter()
                .filter(|m| m.schedule.as_deref() == Some(s))
                .map(|m| m.id.clone())
                .collect()
        } else if a.snapshots.is_empty() {
            ms.iter().map(|m| m.id.clone()).collect()
        } else {
            let mut v = Vec::new();
            for s in &a.snapshots {
                v.push(from.resolve(s).await?);
            }
            v
        };
        let progress = std::sync::Arc::new(Progress::default());
        let bar = progress_bar(progress.clone());
        let r = strata_backup::copy::copy(&from, &to, &ids, &progress).await?;
        drop(bar);
        if a.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            println!(
                "copied {} snapshots ({} already there): {} objects ({} read, {} uploaded), {} reused",
                r.copied.len(),
                r.present.len(),
                r.objects_copied,
                fmt_bytes(r.bytes_read),
                fmt_bytes(r.bytes_uploaded),
                r.objects_reused
            );
        }
        Ok(())
    })
}
