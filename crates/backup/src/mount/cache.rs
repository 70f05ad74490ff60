//! The local cache of a mounted snapshot: verified plaintext of repository objects, one file
//! per object under `<dir>/<repository id>/objects/<object id>`, bounded in size.
//!
//! A file enters the cache only after the repository layer checked its every frame and its
//! size and BLAKE3 digest against the manifest (downloaded to `tmp/`, then renamed), so a
//! cached file is trusted as a data directory's own files are (the engine still checks each
//! chunk's CRC as it reads). Eviction removes the least recently used files until the cache
//! is under its limit; a file being read stays readable after eviction (its handle is open),
//! so the files one query needs are kept whatever the limit, and the cache may exceed it by
//! what a single query holds. Several processes may share a cache directory: downloads go to
//! unique temporary names and are renamed into place, and eviction tolerates files already gone.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::error::{Error, Result};

/// Default bound of a cache: 1 GiB.
pub const DEFAULT_CACHE_BYTES: u64 = 1 << 30;

pub(crate) struct ObjectCache {
    /// The cache directory (all repositories).
    root: PathBuf,
    /// This repository's objects.
    objects: PathBuf,
    tmp: PathBuf,
    limit: u64,
    /// A private temporary cache, removed when the mount is dropped.
    _temp: Option<tempfile::TempDir>,
    seq: AtomicU64,
}

fn unwritable(dir: &Path, e: std::io::Error) -> Error {
    Error::Refused(format!(
        "cache directory {} cannot be written: {e}",
        dir.display()
    ))
}

impl ObjectCache {
    /// Opens (creating) the cache under `dir`, or a temporary one when `None`, and checks that
    /// it can be written before anything else happens.
    pub(crate) fn open(dir: Option<&Path>, limit: u64) -> Result<ObjectCache> {
        let (root, temp) = match dir {
            Some(d) => (d.to_path_buf(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("strata-mount-")
                    .tempdir()
                    .map_err(|e| unwritable(&std::env::temp_dir(), e))?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        std::fs::create_dir_all(&root).map_err(|e| unwritable(&root, e))?;
        let probe = root.join(format!(".probe-{}", std::process::id()));
        File::create(&probe).map_err(|e| unwritable(&root, e))?;
        let _ = std::fs::remove_file(&probe);
        Ok(ObjectCache {
            objects: root.clone(),
            tmp: root.clone(),
            root,
            limit,
            _temp: temp,
            seq: AtomicU64::new(0),
        })
    }

    /// Scopes the cache to one repository (object ids of encrypted repositories are keyed, so
    /// ids never collide across repositories, but a listing per repository is clearer).
    pub(crate) fn for_repository(mut self, repo_id: &str) -> Result<ObjectCache> {
        if repo_id.is_empty() || !repo_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::corrupt("config", "repository id is not hex"));
        }
        let base = self.root.join(repo_id);
        self.objects = base.join("objects");
        self.tmp = base.join("tmp");
        for d in [&self.objects, &self.tmp] {
            std::fs::create_dir_all(d).map_err(|e| unwritable(d, e))?;
        }
        Ok(self)
    }

    /// Where this repository's verified manifests are kept ([`super::manifests`]); `None` for
    /// a private temporary cache, which no later mount reads.
    pub(crate) fn manifests_dir(&self) -> Option<PathBuf> {
        match (&self._temp, self.objects.parent()) {
            (None, Some(base)) if self.objects != self.root => Some(base.join("manifests")),
            _ => None,
        }
    }

    fn path(&self, id: &str) -> PathBuf {
        self.objects.join(id)
    }

    /// The cached plaintext of object `id` if present with the expected size; marks it used.
    pub(crate) fn get(&self, id: &str, size: u64) -> Option<File> {
        let f = File::open(self.path(id)).ok()?;
        match f.metadata() {
            Ok(m) if m.len() == size => {
                let _ = f.set_modified(SystemTime::now());
                Some(f)
            }
            _ => None,
        }
    }

    /// The cached first bytes of object `id` (see [`ObjectCache::put_head`]); marks them used.
    pub(crate) fn get_head(&self, id: &str) -> Option<Vec<u8>> {
        let path = self.objects.join(format!("{id}.head"));
        let bytes = std::fs::read(&path).ok()?;
        if let Ok(f) = File::options().write(true).open(&path) {
            let _ = f.set_modified(SystemTime::now());
        }
        Some(bytes)
    }

    /// Keeps the verified first bytes of object `id` (a part's header, read by range), so a
    /// later mount opens the part without asking the repository. Best effort: a cache that
    /// cannot take them only costs a ranged read next time.
    pub(crate) fn put_head(&self, id: &str, bytes: &[u8]) {
        let tmp = self.tmp_path(id);
        if std::fs::write(&tmp, bytes).is_ok()
            && std::fs::rename(&tmp, self.objects.join(format!("{id}.head"))).is_ok()
        {
            self.evict(None);
        } else {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// The kept stored bytes (header and first frame, as read from the repository, not yet
    /// decoded) of object `id`; see [`ObjectCache::put_frame0`].
    pub(crate) fn get_frame0(&self, id: &str) -> Option<Vec<u8>> {
        std::fs::read(self.objects.join(format!("{id}.frame0"))).ok()
    }

    /// Keeps the stored bytes of object `id`'s header and first frame, read by range, so that
    /// fetching the object whole later reads only the rest. They are kept as stored (sealed):
    /// the whole object's decoding checks them again. Best effort, like [`Self::put_head`];
    /// the caller's next `put_head` or `insert` evicts down to the limit.
    pub(crate) fn put_frame0(&self, id: &str, stored: &[u8]) {
        let tmp = self.tmp_path(id);
        if std::fs::write(&tmp, stored).is_err()
            || std::fs::rename(&tmp, self.objects.join(format!("{id}.frame0"))).is_err()
        {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// Forgets the kept first frame of `id` (the whole object is cached now).
    pub(crate) fn drop_frame0(&self, id: &str) {
        let _ = std::fs::remove_file(self.objects.join(format!("{id}.frame0")));
    }

    /// A fresh temporary path to download `id` into.
    pub(crate) fn tmp_path(&self, id: &str) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        self.tmp.join(format!("{id}.{}.{n}", std::process::id()))
    }

    /// Moves a verified download into the cache, evicts down to the limit (never `id`
    /// itself), and opens it.
    pub(crate) fn insert(&self, tmp: &Path, id: &str) -> Result<File> {
        let to = self.path(id);
        std::fs::rename(tmp, &to).map_err(|e| Error::io(&to, e))?;
        let f = File::open(&to).map_err(|e| Error::io(&to, e))?;
        self.evict(Some(id));
        Ok(f)
    }

    /// Removes least recently used objects (of every repository in the cache directory) until
    /// the cache is within its limit.
    fn evict(&self, keep: Option<&str>) {
        let mut files: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        let Ok(repos) = std::fs::read_dir(&self.root) else {
            return;
        };
        for r in repos.flatten() {
            let Ok(objs) = std::fs::read_dir(r.path().join("objects")) else {
                continue;
            };
            for o in objs.flatten() {
                if keep.is_some_and(|k| o.file_name() == k)
                    && o.path().parent() == Some(&self.objects)
                {
                    continue;
                }
                if let Ok(m) = o.metadata() {
                    files.push((
                        m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        m.len(),
                        o.path(),
                    ));
                }
            }
        }
        let kept = keep
            .and_then(|k| std::fs::metadata(self.path(k)).ok())
            .map_or(0, |m| m.len());
        let mut total: u64 = kept + files.iter().map(|f| f.1).sum::<u64>();
        files.sort();
        for (_, len, path) in files {
            if total <= self.limit {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(len);
            }
        }
    }

    /// Bytes of cached objects, all repositories (tests, reports).
    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        let mut n = 0;
        if let Ok(repos) = std::fs::read_dir(&self.root) {
            for r in repos.flatten() {
                if let Ok(objs) = std::fs::read_dir(r.path().join("objects")) {
                    n += objs
                        .flatten()
                        .filter_map(|o| o.metadata().ok())
                        .map(|m| m.len())
                        .sum::<u64>();
                }
            }
        }
        n
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn put(c: &ObjectCache, id: &str, len: usize) {
        let t = c.tmp_path(id);
        std::fs::write(&t, vec![7u8; len]).unwrap();
        c.insert(&t, id).unwrap();
    }

    #[test]
    fn the_cache_evicts_least_recently_used_objects_down_to_its_limit() {
        let d = tempfile::tempdir().unwrap();
        let c = ObjectCache::open(Some(d.path()), 250)
            .unwrap()
            .for_repository("ab12")
            .unwrap();
        put(&c, "a", 100);
        std::thread::sleep(std::time::Duration::from_millis(20));
        put(&c, "b", 100);
        std::thread::sleep(std::time::Duration::from_millis(20));
        // Reading `a` makes `b` the least recently used.
        assert!(c.get("a", 100).is_some());
        std::thread::sleep(std::time::Duration::from_millis(20));
        put(&c, "c", 100);
        assert!(c.get("a", 100).is_some());
        assert!(c.get("b", 100).is_none());
        assert!(c.get("c", 100).is_some());
        assert_eq!(c.used(), 200);
        // An object larger than the whole cache is kept (a query needs it) and evicts the rest.
        put(&c, "d", 400);
        assert!(c.get("d", 400).is_some());
        assert_eq!(c.used(), 400);
        // A wrong size is a miss, never a wrong answer.
        assert!(c.get("d", 399).is_none());
    }

    #[test]
    fn an_unwritable_cache_directory_is_refused_up_front() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = ObjectCache::open(Some(&file.join("cache")), 1)
            .err()
            .unwrap();
        assert!(err.to_string().contains("cannot be written"), "{err}");
    }
}
