//! The repository API the web UI (and any script) uses: the server's backup repository seen
//! as snapshots with their sizes and the reasons retention keeps them, one snapshot's detail
//! and diff, verify as a job, the restore dry-run plan, the prune preview, pins and deletes,
//! and the overview of schedules, point-in-time windows and archive lag.
//!
//! Every handler calls the backup crate's own functions (`manifests`, `diff::summarize`,
//! `verify::verify`, `restore::plan_restore`, `prune::plan_prune_scoped`, `gc::pin`…) on the
//! repository the server's backup jobs use ([`Backups::repository`], so its key is derived
//! once). Nothing here re-implements a backup procedure. Routes sit behind the server's
//! token check like the rest of the API (merged in `lib.rs`); documented in `docs/API.md`.

mod detail;
mod jobs;
mod overview;
mod prune;
mod restore_plan;
mod snapshots;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use strata_backup::Repository;
use strata_backup::archive::ship::ArchiveStats;
use strata_backup::settings::RepoSettings;

use crate::backup_jobs::Backups;
use crate::http::error::ApiError;
use crate::scheduler::Scheduler;

/// What the repository API needs from the server.
#[derive(Clone)]
pub struct RepoApi {
    pub backups: Arc<Backups>,
    pub schedules: Arc<Scheduler>,
    /// The archiver's figures when continuous archiving is on.
    pub archive: Option<Arc<ArchiveStats>>,
}

impl RepoApi {
    fn settings(&self) -> Result<&RepoSettings, ApiError> {
        self.backups
            .repo
            .as_ref()
            .filter(|r| !r.url.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "no backup repository configured (start the server with --repo URL)",
                )
            })
    }

    /// The server's repository, opened once and kept (see [`Backups::repository`]).
    async fn repo(&self) -> Result<Arc<Repository>, ApiError> {
        let settings = self.settings()?;
        let (r, _) = self
            .backups
            .repository(settings)
            .await
            .map_err(backup_error)?;
        Ok(r)
    }

    /// The schedules that write to the server's repository, with their retention policy.
    fn local_schedules(&self) -> impl Iterator<Item = &Arc<crate::scheduler::Schedule>> {
        let url = self.backups.repo.as_ref().map(|r| r.url.clone());
        self.schedules
            .schedules
            .iter()
            .filter(move |s| Some(&s.repo.url) == url.as_ref())
    }
}

/// A backup-crate error as an API answer: what the operator did wrong is a 4xx, a repository
/// that cannot be read now is a 503.
pub fn backup_error(e: strata_backup::Error) -> ApiError {
    use strata_backup::Error as E;
    let status = match &e {
        E::SnapshotNotFound(_) => StatusCode::NOT_FOUND,
        E::AmbiguousSnapshot(_) | E::InvalidArgument(_) | E::BadUrl { .. } => {
            StatusCode::BAD_REQUEST
        }
        E::Refused(_) => StatusCode::CONFLICT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError::new(status, e)
}

pub fn routes(api: RepoApi) -> Router {
    Router::new()
        .route("/api/v1/overview", get(overview::overview))
        .route("/api/v1/repository", get(overview::repository))
        .route("/api/v1/repository/snapshots", get(snapshots::list))
        .route(
            "/api/v1/repository/snapshots/{id}",
            get(detail::detail).delete(snapshots::forget),
        )
        .route(
            "/api/v1/repository/snapshots/{id}/verify",
            post(jobs::verify),
        )
        .route("/api/v1/repository/restore-plan", post(restore_plan::plan))
        .route("/api/v1/repository/prune-preview", post(prune::preview))
        .route("/api/v1/repository/prune", post(jobs::prune))
        .route(
            "/api/v1/repository/snapshots/{id}/pin",
            put(snapshots::pin).delete(snapshots::unpin),
        )
        .with_state(api)
}
