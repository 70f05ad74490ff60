//! Snapshot pins: which part directories a live snapshot holds, the deletes deferred until its
//! release, and the `snapshots/PINS` file that carries the pin set across a restart or a
//! `kill -9` (normative: `docs/format/pins.md`).
//!
//! A snapshot copies nothing of the parts it lists: it pins them. While a part is pinned, a
//! merge or TTL drop or group deletion that unpublishes it leaves its directory where it is and
//! records it as *deferred*; the release of the last snapshot pinning it deletes it. Open reads
//! `PINS` first and never deletes a directory a live (unexpired) pin lists.
//!
//! `PINS` is written by rename from a temp file but not fsynced: a pin only protects readers
//! that run beside the engine (the backup in-process, or `strata backup --server` on the same
//! host), and a power cut stops those too. A process crash (`kill -9`) keeps the page cache,
//! hence the file. A damaged `PINS` (a power cut between its write and rename) is reported
//! and treated as empty: nobody can be reading a snapshot across a power cut.
//!
//! Lock order: `layout` → `pins` (see `state.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{frame, remove_all, unframe};
use crate::vfs::Vfs;

pub const PINS_FILE: &str = "PINS";
pub const PINS_MAGIC: &[u8; 8] = b"STRATPIN";
pub const PINS_VERSION: u32 = 1;
/// Directory of the pin file and of each snapshot's copied WAL cut.
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// One live snapshot as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub id: String,
    pub lsn: u64,
    /// ns since the epoch.
    pub taken_at: i64,
    /// Wall-clock expiry (ns since the epoch): after it the pin is dropped, live or not.
    pub expires_at: i64,
    /// Part directories, relative to the data directory.
    pub parts: Vec<PathBuf>,
    /// Whether `snapshots/<id>/` holds a copied WAL cut.
    pub wal_copy: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PinsBody {
    snapshots: Vec<Pin>,
}

/// The engine's pin table (behind `Inner::pins`).
#[derive(Debug, Default)]
pub struct Pins {
    snaps: BTreeMap<String, Pin>,
    /// Pin count per part directory (relative to the data directory).
    refs: HashMap<PathBuf, usize>,
    /// Unpublished part directories waiting for their last pin to go.
    deferred: HashSet<PathBuf>,
}

impl Pins {
    pub fn from_pins(pins: Vec<Pin>) -> Pins {
        let mut p = Pins::default();
        for pin in pins {
            p.add(pin);
        }
        p
    }

    pub fn add(&mut self, pin: Pin) {
        for d in &pin.parts {
            *self.refs.entry(d.clone()).or_default() += 1;
        }
        self.snaps.insert(pin.id.clone(), pin);
    }

    pub fn is_pinned(&self, rel_dir: &Path) -> bool {
        self.refs.contains_key(rel_dir)
    }

    /// Every pinned part directory, relative to the data directory.
    pub fn pinned_dirs(&self) -> HashSet<PathBuf> {
        self.refs.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.snaps.len()
    }

    pub fn deferred_len(&self) -> usize {
        self.deferred.len()
    }

    /// Record that `rel_dir` is no longer published. Returns whether it must be deleted now
    /// (it is not pinned); otherwise its delete waits for the last release.
    pub fn unpublish(&mut self, rel_dir: &Path) -> bool {
        if self.is_pinned(rel_dir) {
            self.deferred.insert(rel_dir.to_path_buf());
            false
        } else {
            true
        }
    }

    /// Drop snapshot `id`. Returns it and the deferred directories nobody pins any more (to be
    /// deleted by the caller).
    pub fn remove(&mut self, id: &str) -> Option<(Pin, Vec<PathBuf>)> {
        let pin = self.snaps.remove(id)?;
        let mut free = Vec::new();
        for d in &pin.parts {
            let gone = match self.refs.get_mut(d) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => true,
                None => false,
            };
            if gone {
                self.refs.remove(d);
                if self.deferred.remove(d) {
                    free.push(d.clone());
                }
            }
        }
        Some((pin, free))
    }

    /// Ids of snapshots whose wall-clock expiry is at or before `now`.
    pub fn expired(&self, now: i64) -> Vec<String> {
        self.snaps
            .values()
            .filter(|p| p.expires_at <= now)
            .map(|p| p.id.clone())
            .collect()
    }

    pub fn encode(&self) -> Result<Vec<u8>> {
        let body = PinsBody {
            snapshots: self.snaps.values().cloned().collect(),
        };
        let json = serde_json::to_vec(&body).map_err(|e| Error::InvalidInput(e.to_string()))?;
        Ok(frame(PINS_MAGIC, PINS_VERSION, &json))
    }

    /// Write `snapshots/PINS` (temp file and rename; no fsync, see the module docs).
    pub fn save(&self, vfs: &dyn Vfs, data_dir: &Path) -> Result<()> {
        let dir = data_dir.join(SNAPSHOTS_DIR);
        let path = dir.join(PINS_FILE);
        if self.snaps.is_empty() {
            return remove_all(vfs, &path);
        }
        let tmp = dir.join("PINS.tmp");
        let bytes = self.encode()?;
        {
            let mut f = vfs.create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            f.write_all(&bytes).map_err(|e| Error::io(&tmp, e))?;
        }
        vfs.rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }
}

/// Decode a `PINS` file's bytes.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Vec<Pin>> {
    let payload = unframe(path, PINS_MAGIC, PINS_VERSION, bytes)?;
    let body: PinsBody = serde_json::from_slice(payload)
        .map_err(|e| Error::corrupt(path, format!("bad PINS file: {e}")))?;
    for p in &body.snapshots {
        for d in &p.parts {
            if !crate::snapshot::is_safe_rel(d) {
                return Err(Error::corrupt(
                    path,
                    format!("pin lists an unsafe path {}", d.display()),
                ));
            }
        }
    }
    Ok(body.snapshots)
}

/// Read the pins that are still live at `now` from `snapshots/PINS` (none when the file is
/// missing; none, with a warning, when it is damaged).
pub fn load_live(vfs: &dyn Vfs, data_dir: &Path, now: i64) -> Vec<Pin> {
    let path = data_dir.join(SNAPSHOTS_DIR).join(PINS_FILE);
    let bytes = match vfs.read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the snapshot pins; ignoring them");
            return Vec::new();
        }
    };
    match decode(&path, &bytes) {
        Ok(pins) => pins.into_iter().filter(|p| p.expires_at > now).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "damaged snapshot pin file; ignoring it");
            Vec::new()
        }
    }
}

/// Remove `path` (file or tree) except the pinned part directories inside it, which are
/// returned (relative to `data_dir`) so the caller can defer them. Directories holding a
/// pinned part are kept (emptied of everything else, manifests included, so nothing
/// republishes them).
pub fn remove_unpinned(
    vfs: &dyn Vfs,
    data_dir: &Path,
    path: &Path,
    pinned: &HashSet<PathBuf>,
) -> Result<Vec<PathBuf>> {
    let Ok(rel) = path.strip_prefix(data_dir) else {
        remove_all(vfs, path)?;
        return Ok(Vec::new());
    };
    if pinned.contains(rel) {
        return Ok(vec![rel.to_path_buf()]);
    }
    if !pinned.iter().any(|p| p.starts_with(rel)) {
        remove_all(vfs, path)?;
        return Ok(Vec::new());
    }
    let mut kept = Vec::new();
    let entries = vfs.read_dir(path).map_err(|e| Error::io(path, e))?;
    for ent in entries {
        kept.extend(remove_unpinned(
            vfs,
            data_dir,
            &path.join(&ent.name),
            pinned,
        )?);
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(id: &str, parts: &[&str], expires_at: i64) -> Pin {
        Pin {
            id: id.into(),
            lsn: 7,
            taken_at: 1,
            expires_at,
            parts: parts.iter().map(PathBuf::from).collect(),
            wal_copy: false,
        }
    }

    #[test]
    fn deferred_deletes_wait_for_the_last_pin() {
        let mut p = Pins::default();
        p.add(pin("a", &["data/g/p1", "data/g/p2"], 10));
        p.add(pin("b", &["data/g/p2"], 10));
        assert!(p.unpublish(Path::new("data/g/p3")));
        assert!(!p.unpublish(Path::new("data/g/p1")));
        assert!(!p.unpublish(Path::new("data/g/p2")));
        let (_, free) = p.remove("a").unwrap();
        assert_eq!(free, vec![PathBuf::from("data/g/p1")]);
        let (_, free) = p.remove("b").unwrap();
        assert_eq!(free, vec![PathBuf::from("data/g/p2")]);
        assert!(p.remove("b").is_none());
        assert_eq!(p.deferred_len(), 0);
    }

    #[test]
    fn pins_round_trip_and_damage_is_detected() {
        let mut p = Pins::default();
        p.add(pin("a", &["data/g/seg-0/shard-0/part-1"], 10));
        let bytes = p.encode().unwrap();
        let path = Path::new("PINS");
        assert_eq!(
            decode(path, &bytes).unwrap(),
            vec![pin("a", &["data/g/seg-0/shard-0/part-1"], 10)]
        );
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert!(decode(path, &bad).is_err());
        let mut hostile = Pins::default();
        hostile.add(pin("h", &["../etc"], 10));
        assert!(decode(path, &hostile.encode().unwrap()).is_err());
    }

    #[test]
    fn expiry_is_by_wall_clock() {
        let p = Pins::from_pins(vec![pin("a", &[], 5), pin("b", &[], 50)]);
        assert_eq!(p.expired(10), vec!["a".to_string()]);
    }
}
