//! The small files at the root of a data directory (normative: `docs/format/data-dir.md`):
//! - `ENGINE`: identity (node id) and format version;
//! - `CHECKPOINT`: the LSN through which every write is in published parts, the catalog as of
//!   that LSN and the part-id high-water mark. WAL replay starts after it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{frame, read_framed, write_atomic};
use crate::model::Catalog;
use crate::vfs::Vfs;

pub const ENGINE_FILE: &str = "ENGINE";
pub const ENGINE_MAGIC: &[u8; 8] = b"STRATENG";
pub const CHECKPOINT_FILE: &str = "CHECKPOINT";
pub const CHECKPOINT_MAGIC: &[u8; 8] = b"STRATCKP";
pub const VERSION: u32 = crate::FORMAT_VERSION;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineFile {
    pub format_version: u32,
    pub node_id: String,
    /// ns since the epoch.
    pub created_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub lsn: u64,
    pub next_part_id: u64,
    pub catalog: Catalog,
}

pub fn read_engine(vfs: &dyn Vfs, dir: &Path) -> Result<Option<EngineFile>> {
    let path = dir.join(ENGINE_FILE);
    if !vfs.exists(&path) {
        return Ok(None);
    }
    let payload = read_framed(vfs, &path, ENGINE_MAGIC, VERSION)?;
    let e: EngineFile = serde_json::from_slice(&payload)
        .map_err(|e| Error::corrupt(&path, format!("bad ENGINE file: {e}")))?;
    if e.format_version == 0 || e.format_version > crate::FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            path,
            found: e.format_version,
            supported: crate::FORMAT_VERSION,
        });
    }
    Ok(Some(e))
}

pub fn encode_engine(e: &EngineFile) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(e).map_err(|e| Error::InvalidInput(e.to_string()))?;
    Ok(frame(ENGINE_MAGIC, VERSION, &json))
}

pub fn write_engine(vfs: &dyn Vfs, dir: &Path, e: &EngineFile) -> Result<()> {
    write_atomic(vfs, &dir.join(ENGINE_FILE), &encode_engine(e)?)
}

pub fn read_checkpoint(vfs: &dyn Vfs, dir: &Path) -> Result<Option<Checkpoint>> {
    let path = dir.join(CHECKPOINT_FILE);
    if !vfs.exists(&path) {
        return Ok(None);
    }
    let payload = read_framed(vfs, &path, CHECKPOINT_MAGIC, VERSION)?;
    serde_json::from_slice(&payload)
        .map(Some)
        .map_err(|e| Error::corrupt(&path, format!("bad CHECKPOINT file: {e}")))
}

pub fn encode_checkpoint(c: &Checkpoint) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(c).map_err(|e| Error::InvalidInput(e.to_string()))?;
    Ok(frame(CHECKPOINT_MAGIC, VERSION, &json))
}

pub fn write_checkpoint(vfs: &dyn Vfs, dir: &Path, c: &Checkpoint) -> Result<()> {
    write_atomic(vfs, &dir.join(CHECKPOINT_FILE), &encode_checkpoint(c)?)
}
