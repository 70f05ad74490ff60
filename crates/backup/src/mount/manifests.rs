//! Verified manifests kept in a mount's cache directory (`<dir>/<repository id>/manifests/`),
//! so a warm `strata query --repo --cache-dir` does not download and decrypt the snapshot's
//! manifest again. A manifest never changes once written (its id names it), so a copy that
//! was verified when it was fetched stays true; the snapshot listing is still read on every
//! mount (`latest` needs it, and a forgotten snapshot must not answer from the cache).
//!
//! A kept file is `SKM1`, the snapshot's recorded time (i64 little-endian), a 32-byte BLAKE3
//! of the time's 8 bytes and the JSON, then the JSON. It is written to a temporary name and
//! renamed, checked, parsed and validated again when read; anything that does not check out is
//! ignored (and the manifest fetched from the repository as if it were not kept). The time up
//! front lets `latest` be picked among many kept manifests by reading 12 bytes of each, then
//! only the newest is read whole (and checked, its time included).

use std::path::PathBuf;
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::repo::Repository;

/// Manifests kept per repository at most (the least recently used go first).
const KEEP: usize = 64;
const MAGIC: &[u8; 4] = b"SKM1";

/// Where verified manifests are kept; `None`: nowhere (a private temporary cache).
#[derive(Clone)]
pub(crate) struct KeptManifests {
    dir: Option<PathBuf>,
}

impl KeptManifests {
    pub(crate) fn new(dir: Option<PathBuf>) -> KeptManifests {
        let dir = dir.filter(|d| std::fs::create_dir_all(d).is_ok());
        KeptManifests { dir }
    }

    fn path(&self, id: &str) -> Option<PathBuf> {
        // Ids come from the repository's listing: only plain names become file names.
        let plain = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        self.dir.as_ref().filter(|_| plain).map(|d| d.join(id))
    }

    /// The recorded time a kept manifest's header states (checked when it is read whole).
    fn time_of(&self, id: &str) -> Option<i64> {
        use std::io::Read;
        let mut head = [0u8; 12];
        std::fs::File::open(self.path(id)?)
            .ok()?
            .read_exact(&mut head)
            .ok()?;
        let (magic, time) = head.split_at(4);
        (magic == MAGIC).then(|| i64::from_le_bytes(time.try_into().unwrap_or_default()))
    }

    fn get(&self, id: &str) -> Option<Manifest> {
        let path = self.path(id)?;
        let bytes = std::fs::read(&path).ok()?;
        let (magic, rest) = bytes.split_at_checked(4)?;
        let (time, rest) = rest.split_at_checked(8)?;
        let (sum, json) = rest.split_at_checked(32)?;
        let mut h = blake3::Hasher::new();
        h.update(time);
        h.update(json);
        if magic != MAGIC || h.finalize().as_bytes() != sum {
            return None;
        }
        let m: Manifest = serde_json::from_slice(json).ok()?;
        m.validate(id).ok()?;
        if m.time.to_le_bytes() != time {
            return None;
        }
        if let Ok(f) = std::fs::File::options().write(true).open(&path) {
            let _ = f.set_modified(SystemTime::now());
        }
        Some(m)
    }

    /// Best effort: a manifest that cannot be kept is fetched again next time.
    fn put(&self, m: &Manifest) {
        let (Some(dir), Some(path)) = (&self.dir, self.path(&m.id)) else {
            return;
        };
        let Ok(json) = serde_json::to_vec(m) else {
            return;
        };
        let time = m.time.to_le_bytes();
        let mut h = blake3::Hasher::new();
        h.update(&time);
        h.update(&json);
        let mut bytes = Vec::with_capacity(44 + json.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&time);
        bytes.extend_from_slice(h.finalize().as_bytes());
        bytes.extend_from_slice(&json);
        let tmp = dir.join(format!(".{}.{}", m.id, std::process::id()));
        if std::fs::write(&tmp, &bytes).is_err() || std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
            return;
        }
        self.trim();
    }

    fn trim(&self) {
        let Some(dir) = &self.dir else { return };
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut files: Vec<(SystemTime, PathBuf)> = rd
            .flatten()
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if files.len() <= KEEP {
            return;
        }
        files.sort();
        for (_, p) in &files[..files.len() - KEEP] {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Manifest `id`, kept or fetched (and then kept).
    async fn load(&self, repo: &Repository, id: &str) -> Result<Manifest> {
        if let Some(m) = self.get(id) {
            return Ok(m);
        }
        let m = repo.load_manifest(id).await?;
        self.put(&m);
        Ok(m)
    }

    /// The manifest of snapshot `spec` (`latest`, an id or a unique prefix of one), resolved
    /// as [`Repository::resolve`] resolves it: `latest` is the newest by recorded time (then
    /// id) of the manifests that load, damaged ones skipped.
    pub(crate) async fn resolve(&self, repo: &Repository, spec: &str) -> Result<Manifest> {
        if spec != "latest" {
            let id = repo.resolve(spec).await?;
            return self.load(repo, &id).await;
        }
        let ids = repo.snapshot_ids().await?;
        // Kept manifests by the time in their header; the rest loaded (and kept).
        let mut newest: Option<Manifest> = None;
        let mut newest_kept: Option<(i64, &String)> = None;
        let mut unkept = Vec::new();
        for id in &ids {
            match self.time_of(id) {
                Some(t) if newest_kept.is_none_or(|(nt, nid)| (nt, nid) < (t, id)) => {
                    newest_kept = Some((t, id));
                }
                Some(_) => {}
                None => unkept.push(id),
            }
        }
        if let Some((t, id)) = newest_kept {
            match self.get(id) {
                Some(m) if m.time == t => newest = Some(m),
                // A kept file that does not check out: every manifest the slow way.
                _ => unkept = ids.iter().collect(),
            }
        }
        for id in unkept {
            match self.load(repo, id).await {
                Ok(m) => {
                    if newest
                        .as_ref()
                        .is_none_or(|n| (n.time, &n.id) < (m.time, &m.id))
                    {
                        newest = Some(m);
                    }
                }
                Err(e) => tracing::debug!(snapshot = %id, error = %e, "skipping a manifest"),
            }
        }
        newest.ok_or_else(|| Error::SnapshotNotFound("latest (the repository is empty)".into()))
    }
}
