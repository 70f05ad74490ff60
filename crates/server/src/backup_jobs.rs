//! `POST /api/v1/backups`, `GET /api/v1/backups`, `GET /api/v1/jobs/{id}`: backup jobs run
//! in-process. Owned by the backup work; the server merges [`routes`] into its router (behind
//! its auth layer).

use std::sync::Arc;

use strata_engine::Engine;

/// Routes for backup jobs. `repo` is the server's configured backup repository URL.
pub fn routes(_engine: Arc<Engine>, _repo: Option<String>) -> axum::Router {
    axum::Router::new()
}
