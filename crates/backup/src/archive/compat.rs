//! `restore --format-version N`: the data directory a restore writes, for the release that
//! will open it. 2 (default) is this release. 1 is the previous release (rollback after a
//! failed upgrade): the WAL is rewritten in format 1 (the same records without their commit
//! times) and every part in part format 1 (without the per-block summaries of part formats 2
//! and 3 and the chunked series table of format 3, which are derived data; `data.bin` is
//! untouched). A snapshot holds nothing else v1 cannot
//! represent; a future format change adds its refusals here.

use strata_engine::backup_api::StagedDir;
use strata_engine::backup_api::archive::{rewrite_parts_v1, rewrite_wal_v1};

use crate::error::{Error, Result};

/// The WAL format versions a restore can write.
pub const SUPPORTED: [u32; 2] = [1, 2];

pub fn check(version: Option<u32>) -> Result<()> {
    match version {
        None => Ok(()),
        Some(v) if SUPPORTED.contains(&v) => Ok(()),
        Some(v) => Err(Error::InvalidArgument(format!(
            "--format-version {v}: this release writes format 2 and can write format 1 for the previous release"
        ))),
    }
}

/// Converts the prepared staging directory for `version` (before the swap).
pub async fn convert(staged: StagedDir, version: Option<u32>) -> Result<StagedDir> {
    check(version)?;
    if version != Some(1) {
        return Ok(staged);
    }
    tokio::task::spawn_blocking(move || {
        let r = rewrite_wal_v1(staged.path()).and_then(|_| rewrite_parts_v1(staged.path()));
        (staged, r)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))
    .and_then(|(staged, r)| r.map(|_| staged).map_err(Error::from))
}
