//! Node identity: the node id recorded in a data directory's `ENGINE` file, changed when a
//! restore lands on another node (`strata restore --node-id`).

use std::path::Path;

use super::lock::try_lock;
use crate::error::{Error, Result};
use crate::meta_files;
use crate::vfs::Vfs;

/// Change the node id recorded in a data (or restored staging) directory, atomically. Fails
/// with [`Error::Locked`] while an engine holds the directory.
pub fn set_node_id(vfs: &dyn Vfs, dir: &Path, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 256 {
        return Err(Error::InvalidInput("node id must be 1-256 bytes".into()));
    }
    let _lock = try_lock(vfs, dir)?;
    let mut e = meta_files::read_engine(vfs, dir)?.ok_or_else(|| {
        Error::InvalidInput(format!("{} is not a Strata data directory", dir.display()))
    })?;
    e.node_id = id.to_string();
    meta_files::write_engine(vfs, dir, &e)
}
