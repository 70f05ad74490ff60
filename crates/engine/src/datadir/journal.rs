//! The swap journal `.DIR.restore-journal` (normative: `docs/format/swap-journal.md`).
//!
//! Version 2 is a framed file (magic `STRATSWJ`, version, length, JSON payload, CRC-32C) that
//! names the staging, target and rollback directories by their entry names in the parent.
//! Version 1 (Strata v1) was bare JSON with the paths as the restoring process spelled them
//! (possibly relative to its working directory); it is still read, and only the last
//! component of each path is used, resolved in the journal's own directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::names::is_plain_name;
use crate::error::{Error, Result};
use crate::format::{frame, unframe};

pub const JOURNAL_MAGIC: &[u8; 8] = b"STRATSWJ";
/// Version written by this build; 1 is the bare-JSON journal of Strata v1.
pub const JOURNAL_VERSION: u32 = 2;

/// What a swap is doing: move `target` aside as `rollback` (if it holds data), rename
/// `staging` to `target`. Entry names in the journal's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub target: String,
    pub staging: String,
    pub rollback: String,
    /// The snapshot the staging directory holds (reported when recovery finishes the swap).
    pub snapshot: String,
}

/// The v1 journal, bare JSON (`crates/backup/src/restore.rs` of Strata v1).
#[derive(Deserialize)]
struct LegacyJournal {
    target: PathBuf,
    staging: PathBuf,
    rollback: PathBuf,
    snapshot: String,
}

pub fn encode(j: &Journal) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(j).map_err(|e| Error::InvalidInput(e.to_string()))?;
    Ok(frame(JOURNAL_MAGIC, JOURNAL_VERSION, &json))
}

/// Decode either version; anything else (a checksum mismatch, a name that is not a plain
/// entry of the directory) is [`Error::Corrupt`]: recovery never guesses.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Journal> {
    let j = if bytes.starts_with(JOURNAL_MAGIC) {
        let payload = unframe(path, JOURNAL_MAGIC, JOURNAL_VERSION, bytes)?;
        serde_json::from_slice::<Journal>(payload)
            .map_err(|e| Error::corrupt(path, format!("bad swap journal payload: {e}")))?
    } else if bytes.trim_ascii_start().starts_with(b"{") {
        let l: LegacyJournal = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt(path, format!("bad v1 restore journal: {e}")))?;
        let name = |p: &Path| {
            p.file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
                .unwrap_or_default()
        };
        Journal {
            target: name(&l.target),
            staging: name(&l.staging),
            rollback: name(&l.rollback),
            snapshot: l.snapshot,
        }
    } else {
        return Err(Error::corrupt(
            path,
            "neither a swap journal (bad magic) nor a v1 restore journal",
        ));
    };
    for (what, n) in [
        ("target", &j.target),
        ("staging", &j.staging),
        ("rollback", &j.rollback),
    ] {
        if !is_plain_name(n) {
            return Err(Error::corrupt(
                path,
                format!("swap journal names {what} {n:?}, not an entry of its directory"),
            ));
        }
    }
    if j.target == j.staging || j.target == j.rollback || j.staging == j.rollback {
        return Err(Error::corrupt(
            path,
            "swap journal names one directory twice",
        ));
    }
    Ok(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Journal {
        Journal {
            target: "r2".into(),
            staging: ".r2.restore-0123456789abcdef".into(),
            rollback: "r2.pre-restore-20261201T120000Z-beef".into(),
            snapshot: "0123456789abcdef".into(),
        }
    }

    #[test]
    fn round_trips_and_detects_every_flipped_byte() {
        let p = Path::new("/x/.r2.restore-journal");
        let bytes = encode(&sample()).unwrap();
        assert_eq!(decode(p, &bytes).unwrap(), sample());
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x20;
            assert!(decode(p, &b).is_err(), "flip at {i} accepted");
        }
        for n in 0..bytes.len() {
            assert!(
                decode(p, &bytes[..n]).is_err(),
                "truncation to {n} accepted"
            );
        }
    }

    #[test]
    fn reads_the_v1_bare_json_journal() {
        // Exactly what Strata v1 wrote (serde_json of its `Journal`, relative paths).
        let v1 = br#"{"target":"r2","staging":".r2.restore-0123456789abcdef","rollback":"r2.pre-restore-20261201T120000Z-beef","snapshot":"0123456789abcdef"}"#;
        assert_eq!(decode(Path::new("j"), v1).unwrap(), sample());
        let abs = br#"{"target":"/d/r2","staging":"/d/.r2.restore-0123456789abcdef","rollback":"/d/r2.pre-restore-20261201T120000Z-beef","snapshot":"0123456789abcdef"}"#;
        assert_eq!(decode(Path::new("j"), abs).unwrap(), sample());
    }

    #[test]
    fn refuses_names_outside_the_directory() {
        for (field, bad) in [("staging", "../etc"), ("rollback", "/"), ("target", "")] {
            let mut j = sample();
            match field {
                "staging" => j.staging = bad.into(),
                "rollback" => j.rollback = bad.into(),
                _ => j.target = bad.into(),
            }
            let bytes = encode(&j).unwrap();
            assert!(decode(Path::new("j"), &bytes).is_err(), "{field} {bad:?}");
        }
        let v1 = br#"{"target":"/d/r2","staging":"/","rollback":"/d/x","snapshot":"s"}"#;
        assert!(decode(Path::new("j"), v1).is_err());
    }
}
