//! Where the backup sequence gets its snapshot: an engine in this process
//! ([`EngineSource`]: `strata backup --data-dir`, the server's backup jobs) or a running
//! server reached over HTTP (`strata backup --server`, in the CLI). Either way the snapshot is
//! pinned until [`SnapshotSource::release`] and its files are read where they are.

use std::sync::Arc;

use strata_engine::backup_api::{self, Engine, Snapshot};

use crate::error::{Error, Result};

#[async_trait::async_trait]
pub trait SnapshotSource: Send + Sync {
    /// Take and pin a snapshot.
    async fn take(&self) -> Result<Snapshot>;
    /// Release the snapshot taken as `id`.
    async fn release(&self, id: &str) -> Result<()>;
}

/// Snapshots of an engine open in this process.
pub struct EngineSource {
    engine: Arc<Engine>,
}

impl EngineSource {
    pub fn new(engine: Arc<Engine>) -> Self {
        EngineSource { engine }
    }
}

#[async_trait::async_trait]
impl SnapshotSource for EngineSource {
    async fn take(&self) -> Result<Snapshot> {
        let e = self.engine.clone();
        tokio::task::spawn_blocking(move || backup_api::take_snapshot(&e))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
            .map_err(Error::from)
    }

    async fn release(&self, id: &str) -> Result<()> {
        let e = self.engine.clone();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || backup_api::release_snapshot(&e, &id))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
            .map_err(Error::from)
    }
}
