//! Per-(group, segment, shard) manifests: the single source of truth for which parts are live
//! (normative: `docs/format/manifest.md`).
//!
//! `MANIFEST-<epoch:016x>` is framed JSON, published atomically (temp file, fsync, rename, fsync
//! directory). The highest epoch wins; the previous one is kept, older ones removed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{frame, read_framed, remove_all, write_atomic};
use crate::vfs::Vfs;

pub const MAGIC: &[u8; 8] = b"STRATMNF";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub epoch: u64,
    pub group: String,
    pub segment_start: i64,
    pub segment_end: i64,
    pub shard: u32,
    /// Shard count of this segment (fixed when the segment was created).
    pub shards: u32,
    /// Every write with LSN <= this that belongs to this shard is in the listed parts.
    pub flushed_lsn: u64,
    /// Part-id high-water mark when this manifest was written (ids are never reused).
    pub next_part_id: u64,
    pub parts: Vec<u64>,
}

pub fn file_name(epoch: u64) -> String {
    format!("MANIFEST-{epoch:016x}")
}

fn parse_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("MANIFEST-")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

pub fn encode(m: &Manifest) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(m).map_err(|e| Error::InvalidInput(format!("manifest: {e}")))?;
    Ok(frame(MAGIC, VERSION, &json))
}

/// Publish `m` in `dir` and remove manifests older than the previous epoch.
pub fn publish(vfs: &dyn Vfs, dir: &Path, m: &Manifest) -> Result<()> {
    write_atomic(vfs, &dir.join(file_name(m.epoch)), &encode(m)?)?;
    for (epoch, path) in list(vfs, dir)? {
        if epoch + 1 < m.epoch {
            remove_all(vfs, &path)?;
        }
    }
    Ok(())
}

/// Manifests in `dir`, sorted by epoch.
pub fn list(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for ent in vfs.read_dir(dir).map_err(|e| Error::io(dir, e))? {
        if let Some(epoch) = parse_name(&ent.name) {
            out.push((epoch, dir.join(&ent.name)));
        }
    }
    out.sort();
    Ok(out)
}

pub fn read(vfs: &dyn Vfs, path: &Path) -> Result<Manifest> {
    let payload = read_framed(vfs, path, MAGIC, VERSION)?;
    let m: Manifest = serde_json::from_slice(&payload)
        .map_err(|e| Error::corrupt(path, format!("bad manifest: {e}")))?;
    if parse_name(&path.file_name().unwrap_or_default().to_string_lossy()) != Some(m.epoch) {
        return Err(Error::corrupt(path, "epoch does not match file name"));
    }
    Ok(m)
}

/// The newest manifest of a shard directory. A damaged newest manifest is an error, never a
/// silent fallback: an older one may list parts a merge has since deleted.
pub fn load_latest(vfs: &dyn Vfs, dir: &Path) -> Result<Option<Manifest>> {
    match list(vfs, dir)?.pop() {
        Some((_, path)) => read(vfs, &path).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::RealVfs;

    #[test]
    fn publish_keeps_two_epochs_and_detects_corruption() {
        let d = tempfile::tempdir().unwrap();
        let mut m = Manifest {
            epoch: 1,
            group: "g".into(),
            segment_start: 0,
            segment_end: 10,
            shard: 0,
            shards: 2,
            flushed_lsn: 5,
            next_part_id: 3,
            parts: vec![1, 2],
        };
        for e in 1..=4 {
            m.epoch = e;
            publish(&RealVfs, d.path(), &m).unwrap();
        }
        let l = list(&RealVfs, d.path()).unwrap();
        assert_eq!(l.iter().map(|x| x.0).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(load_latest(&RealVfs, d.path()).unwrap().unwrap(), m);
        let p = d.path().join(file_name(4));
        let mut b = std::fs::read(&p).unwrap();
        b[20] ^= 1;
        std::fs::write(&p, b).unwrap();
        let err = load_latest(&RealVfs, d.path()).unwrap_err();
        assert!(
            err.to_string().contains("MANIFEST-0000000000000004"),
            "{err}"
        );
    }
}
