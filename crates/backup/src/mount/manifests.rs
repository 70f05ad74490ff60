//! Verified manifests kept in a mount's cache directory (`<dir>/<repository id>/manifests/`),
//! so a warm `strata query --repo --cache-dir` does not download and decrypt the snapshot's
//! manifest again. A manifest never changes once written (its id names it), so a copy that
//! was verified when it was fetched stays true; the snapshot listing is still read on every
//! mount (`latest` needs it, and a forgotten snapshot must not answer from the cache).
//!
//! A kept file is a 32-byte BLAKE3 of the JSON, then the JSON. It is written to a temporary
//! name and renamed, parsed and validated again when read; anything that does not check out
//! is ignored (and the manifest fetched from the repository as if it were not kept).

use std::path::PathBuf;
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::repo::Repository;

/// Manifests kept per repository at most (the least recently used go first).
const KEEP: usize = 64;

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

    fn get(&self, id: &str) -> Option<Manifest> {
        let path = self.path(id)?;
        let bytes = std::fs::read(&path).ok()?;
        let (sum, json) = bytes.split_at_checked(32)?;
        if blake3::hash(json).as_bytes() != sum {
            return None;
        }
        let m: Manifest = serde_json::from_slice(json).ok()?;
        m.validate(id).ok()?;
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
        let mut bytes = Vec::with_capacity(32 + json.len());
        bytes.extend_from_slice(blake3::hash(&json).as_bytes());
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
        let mut newest: Option<Manifest> = None;
        for id in repo.snapshot_ids().await? {
            match self.load(repo, &id).await {
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
