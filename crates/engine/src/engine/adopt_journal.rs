//! The adoption journal `ADOPT` (normative: `docs/format/adopt-journal.md`): what an online
//! restore is publishing, written before anything of it is visible, removed once the
//! checkpoint that records it is durable. While it exists, opening the data directory rolls
//! the adoption forward.
//!
//! A framed file (magic `STRATADJ`, version 1, JSON payload, CRC-32C) written atomically
//! (temp, fsync, rename, fsync the directory) through the engine's `Vfs`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{fsync_dir, write_atomic};
use crate::model::Catalog;
use crate::vfs::Vfs;

pub const ADOPT_FILE: &str = "ADOPT";
pub const ADOPT_MAGIC: &[u8; 8] = b"STRATADJ";
pub const ADOPT_VERSION: u32 = 1;
/// Where staging directories live inside the data directory (`adopt/<id>/`).
pub const STAGING_DIR: &str = "adopt";

/// One adopted group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalGroup {
    pub name: String,
    /// Whether an existing group of that name is replaced.
    pub replace: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// The adoption's LSN: records of the adopted groups at or below it are superseded.
    pub cut: u64,
    /// The staging directory's entry name under `adopt/`.
    pub staging: String,
    pub groups: Vec<JournalGroup>,
    /// Catalog entries of the adopted groups (settings, measures, field types).
    pub catalog: Catalog,
}

impl Journal {
    pub fn names(&self) -> Vec<String> {
        self.groups.iter().map(|g| g.name.clone()).collect()
    }
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join(ADOPT_FILE)
}

pub fn encode(j: &Journal) -> Result<Vec<u8>> {
    let json =
        serde_json::to_vec(j).map_err(|e| Error::InvalidInput(format!("adopt journal: {e}")))?;
    Ok(crate::format::frame(ADOPT_MAGIC, ADOPT_VERSION, &json))
}

/// Decodes a journal; anything wrong is [`Error::Corrupt`] (recovery never guesses).
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Journal> {
    let payload = crate::format::unframe(path, ADOPT_MAGIC, ADOPT_VERSION, bytes)?;
    let j: Journal = serde_json::from_slice(payload)
        .map_err(|e| Error::corrupt(path, format!("bad adopt journal payload: {e}")))?;
    let plain = |n: &str| crate::catalog::validate_group_name(n).is_ok();
    if !crate::datadir::names::is_plain_name(&j.staging)
        || j.groups.is_empty()
        || j.groups.iter().any(|g| !plain(&g.name))
    {
        return Err(Error::corrupt(path, "adopt journal names an unsafe entry"));
    }
    for c in &j.catalog.groups {
        crate::catalog::validate_settings(&c.settings)
            .map_err(|e| Error::corrupt(path, format!("adopt journal: group '{}': {e}", c.name)))?;
    }
    for g in &j.groups {
        if !j.catalog.groups.iter().any(|c| c.name == g.name) {
            return Err(Error::corrupt(
                path,
                format!("adopt journal has no catalog entry for group '{}'", g.name),
            ));
        }
    }
    Ok(j)
}

pub fn write(vfs: &dyn Vfs, dir: &Path, j: &Journal) -> Result<()> {
    write_atomic(vfs, &path(dir), &encode(j)?)
}

/// The journal, if one exists.
pub fn read(vfs: &dyn Vfs, dir: &Path) -> Result<Option<Journal>> {
    let p = path(dir);
    if !vfs.exists(&p) {
        return Ok(None);
    }
    let bytes = vfs.read(&p).map_err(|e| Error::io(&p, e))?;
    decode(&p, &bytes).map(Some)
}

/// Removes the journal durably (the adoption is complete).
pub fn remove(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    crate::format::remove_all(vfs, &path(dir))?;
    fsync_dir(vfs, dir)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{GroupCatalog, GroupSettings};

    fn sample() -> Journal {
        Journal {
            cut: 42,
            staging: "restore-7".into(),
            groups: vec![JournalGroup {
                name: "g".into(),
                replace: true,
            }],
            catalog: Catalog {
                groups: vec![GroupCatalog {
                    name: "g".into(),
                    settings: GroupSettings::default(),
                    measures: Vec::new(),
                }],
            },
        }
    }

    /// The v1 journal checked into the repository keeps decoding (regenerate the file with
    /// `STRATA_BLESS=1` only when adding a version).
    #[test]
    fn golden_v1_journal_decodes() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/adopt/ADOPT.v1");
        if std::env::var_os("STRATA_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, encode(&sample()).unwrap()).unwrap();
        }
        let fixture = std::fs::read(&path).unwrap();
        assert_eq!(&fixture[..8], ADOPT_MAGIC);
        assert_eq!(decode(&path, &fixture).unwrap(), sample());
    }

    #[test]
    fn round_trip_and_damage_is_refused() {
        let j = sample();
        let bytes = encode(&j).unwrap();
        assert_eq!(decode(Path::new("ADOPT"), &bytes).unwrap(), j);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(decode(Path::new("ADOPT"), &b).is_err(), "byte {i}");
        }
        let mut bad = sample();
        bad.staging = "../x".into();
        assert!(decode(Path::new("ADOPT"), &encode(&bad).unwrap()).is_err());
        let mut bad = sample();
        bad.catalog.groups.clear();
        assert!(decode(Path::new("ADOPT"), &encode(&bad).unwrap()).is_err());
        // Settings the engine would refuse (a shard count of 0 would divide by zero).
        let mut bad = sample();
        bad.catalog.groups[0].settings.shards = 0;
        let e = decode(Path::new("ADOPT"), &encode(&bad).unwrap()).unwrap_err();
        assert!(e.to_string().contains("group 'g'"), "{e}");
    }
}
