//! `strata pin` / `strata unpin`: a pinned snapshot is never removed by retention (`strata
//! prune`, a schedule's automatic retention); the web UI pins what an operator must keep.
//! `strata forget`: remove one snapshot by hand (the web UI's delete).

use super::repo::{RepoArgs, runtime};

#[derive(clap::Args)]
pub struct PinArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Snapshot id (or a unique prefix, or `latest`)
    snapshot: String,
    /// Why it is kept (shown by nothing yet; recorded with the pin)
    #[arg(long, default_value = "")]
    note: String,
}

#[derive(clap::Args)]
pub struct UnpinArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Snapshot id (or a unique prefix)
    snapshot: String,
}

pub fn pin(a: PinArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let repo = a.repo.open().await?;
        let id = repo.resolve(&a.snapshot).await?;
        strata_backup::gc::pin(&repo, &id, &a.note).await?;
        println!("snapshot {id} pinned: retention never removes it (strata unpin to release)");
        Ok(())
    })
}

pub fn unpin(a: UnpinArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let repo = a.repo.open().await?;
        let id = repo.resolve(&a.snapshot).await?;
        if strata_backup::gc::unpin(&repo, &id).await? {
            println!("snapshot {id} unpinned");
        } else {
            println!("snapshot {id} was not pinned");
        }
        Ok(())
    })
}

#[derive(clap::Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The whole snapshot id (no prefix: a delete is never a guess)
    snapshot: String,
}

pub fn forget(a: ForgetArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let repo = a.repo.open().await?;
        strata_backup::prune::forget(&repo, &a.snapshot).await?;
        println!(
            "snapshot {} removed; the data only it held is freed by the next strata prune",
            a.snapshot
        );
        Ok(())
    })
}
