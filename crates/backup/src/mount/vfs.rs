//! A snapshot's data directory as the engine sees it, served from the repository: the
//! manifest's file table is the directory tree, and a file's bytes are fetched when the engine
//! first reads them. Everything that would write answers "read-only".
//!
//! What the engine reads when it opens the directory: `ENGINE`, `CHECKPOINT`, each shard's
//! `MANIFEST-*`, each part's `meta.bin` and `index.bin` (small), the first bytes of each
//! part's `data.bin` (its header: one ranged read of the object's first frame), and the WAL
//! the snapshot carries. A part's `data.bin` is fetched whole only when a scan reads a chunk
//! of it, that is when the part holds the measure, overlaps the time range and has a series
//! matching the tag filters. Parts of groups left out of the mount are not in the tree at all.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use strata_engine::backup_api::{DirEntry, LockGuard, Vfs, VfsFile};

use super::fetch::{Fetcher, HEAD_BYTES};
use crate::manifest::{FileEntry, FileKind, Manifest};

pub(crate) struct RepoVfs {
    root: PathBuf,
    files: HashMap<String, FileEntry>,
    dirs: HashMap<String, BTreeSet<DirEntry>>,
    /// Files held in memory, not in the repository (the archived WAL a point-in-time mount
    /// replays).
    memory: HashMap<String, Arc<Vec<u8>>>,
    fetcher: Arc<Fetcher>,
}

impl std::fmt::Debug for RepoVfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoVfs")
            .field("root", &self.root)
            .field("files", &self.files.len())
            .finish()
    }
}

fn read_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "a snapshot mounted from a repository is read-only",
    )
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

fn to_io(e: crate::Error) -> io::Error {
    io::Error::other(e.to_string())
}

/// The group a data-directory path belongs to (`data/<group>/...`), if any.
pub(crate) fn group_of(path: &str) -> Option<&str> {
    let mut it = path.split('/');
    (it.next() == Some("data")).then(|| it.next()).flatten()
}

impl RepoVfs {
    /// The tree of `m`'s files under the virtual directory `root`, keeping of `data/` only the
    /// groups in `groups` (all when `None`).
    pub(crate) fn new(
        root: PathBuf,
        m: &Manifest,
        groups: Option<&[String]>,
        fetcher: Arc<Fetcher>,
    ) -> RepoVfs {
        let mut files = HashMap::new();
        let mut dirs: HashMap<String, BTreeSet<DirEntry>> = HashMap::new();
        dirs.insert(String::new(), BTreeSet::new());
        for f in &m.files {
            if let (Some(g), Some(keep)) = (group_of(&f.path), groups)
                && !keep.iter().any(|k| k == g)
            {
                continue;
            }
            let mut parent = String::new();
            let segs: Vec<&str> = f.path.split('/').collect();
            for (i, seg) in segs.iter().enumerate() {
                let last = i + 1 == segs.len();
                dirs.entry(parent.clone()).or_default().insert(DirEntry {
                    name: (*seg).to_string(),
                    is_dir: !last,
                });
                if !parent.is_empty() {
                    parent.push('/');
                }
                parent.push_str(seg);
                if !last {
                    dirs.entry(parent.clone()).or_default();
                }
            }
            files.insert(f.path.clone(), f.clone());
        }
        RepoVfs {
            root,
            files,
            dirs,
            memory: HashMap::new(),
            fetcher,
        }
    }

    /// Adds a file held in memory at `path` (relative, `/`-separated, in an existing or new
    /// directory).
    pub(crate) fn add_memory_file(&mut self, path: &str, bytes: Vec<u8>) {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        if !dir.is_empty() && !self.dirs.contains_key(dir) {
            self.dirs
                .entry(String::new())
                .or_default()
                .insert(DirEntry {
                    name: dir.to_string(),
                    is_dir: true,
                });
        }
        self.dirs
            .entry(dir.to_string())
            .or_default()
            .insert(DirEntry {
                name: name.to_string(),
                is_dir: false,
            });
        self.memory.insert(path.to_string(), Arc::new(bytes));
    }

    fn memory_file(&self, path: &Path) -> Option<Arc<Vec<u8>>> {
        self.rel(path).and_then(|r| self.memory.get(&r).cloned())
    }

    /// `path` relative to the root, `/`-separated ("" for the root itself).
    fn rel(&self, path: &Path) -> Option<String> {
        let r = path.strip_prefix(&self.root).ok()?;
        let mut out = String::new();
        for c in r.components() {
            let Component::Normal(s) = c else {
                return None;
            };
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(s.to_str()?);
        }
        Some(out)
    }

    fn file(&self, path: &Path) -> io::Result<&FileEntry> {
        self.rel(path)
            .and_then(|r| self.files.get(&r))
            .ok_or_else(not_found)
    }
}

impl Vfs for RepoVfs {
    fn open(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        if let Some(bytes) = self.memory_file(path) {
            return Ok(Box::new(MemoryFile(bytes)));
        }
        let entry = self.file(path)?.clone();
        Ok(Box::new(RepoFile {
            entry,
            fetcher: self.fetcher.clone(),
            whole: Mutex::new(None),
            head: Mutex::new(None),
        }))
    }

    fn create(&self, _: &Path) -> io::Result<Box<dyn VfsFile>> {
        Err(read_only())
    }

    fn create_new(&self, _: &Path) -> io::Result<Box<dyn VfsFile>> {
        Err(read_only())
    }

    fn open_append(&self, _: &Path) -> io::Result<Box<dyn VfsFile>> {
        Err(read_only())
    }

    fn open_write(&self, _: &Path) -> io::Result<Box<dyn VfsFile>> {
        Err(read_only())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        if let Some(bytes) = self.memory_file(path) {
            return Ok(bytes.to_vec());
        }
        let entry = self.file(path)?;
        let f = self.fetcher.whole(entry).map_err(to_io)?;
        let mut buf = vec![0u8; usize::try_from(entry.size).map_err(io::Error::other)?];
        FileExt::read_exact_at(&f, &mut buf, 0)?;
        Ok(buf)
    }

    fn exists(&self, path: &Path) -> bool {
        self.rel(path).is_some_and(|r| {
            self.files.contains_key(&r)
                || self.dirs.contains_key(&r)
                || self.memory.contains_key(&r)
        })
    }

    fn is_dir(&self, path: &Path) -> io::Result<bool> {
        let r = self.rel(path).ok_or_else(not_found)?;
        if self.dirs.contains_key(&r) {
            Ok(true)
        } else if self.files.contains_key(&r) || self.memory.contains_key(&r) {
            Ok(false)
        } else {
            Err(not_found())
        }
    }

    fn create_dir(&self, _: &Path) -> io::Result<()> {
        Err(read_only())
    }

    fn create_dir_all(&self, _: &Path) -> io::Result<()> {
        Err(read_only())
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let r = self.rel(path).ok_or_else(not_found)?;
        match self.dirs.get(&r) {
            Some(d) => Ok(d.iter().cloned().collect()),
            None if self.files.contains_key(&r) || self.memory.contains_key(&r) => {
                Err(io::Error::from(io::ErrorKind::NotADirectory))
            }
            None => Err(not_found()),
        }
    }

    fn rename(&self, _: &Path, _: &Path) -> io::Result<()> {
        Err(read_only())
    }

    fn remove_file(&self, _: &Path) -> io::Result<()> {
        Err(read_only())
    }

    fn remove_dir_all(&self, _: &Path) -> io::Result<()> {
        Err(read_only())
    }

    fn hard_link(&self, _: &Path, _: &Path) -> io::Result<()> {
        Err(read_only())
    }

    fn sync_dir(&self, _: &Path) -> io::Result<()> {
        Err(read_only())
    }

    fn try_lock(&self, _: &Path) -> io::Result<Option<LockGuard>> {
        Err(read_only())
    }

    fn try_lock_dir(&self, _: &Path) -> io::Result<Option<LockGuard>> {
        // Nothing can change a snapshot: every reader may hold the "lock".
        Ok(Some(Box::new(())))
    }
}

/// One file of the mounted snapshot: its first bytes from a ranged read, all of it from the
/// cache once anything beyond them is read.
struct RepoFile {
    entry: FileEntry,
    fetcher: Arc<Fetcher>,
    whole: Mutex<Option<Arc<File>>>,
    head: Mutex<Option<Arc<Vec<u8>>>>,
}

impl RepoFile {
    fn whole(&self) -> io::Result<Arc<File>> {
        let mut g = self.whole.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = g.as_ref() {
            return Ok(f.clone());
        }
        let f = Arc::new(self.fetcher.whole(&self.entry).map_err(to_io)?);
        *g = Some(f.clone());
        Ok(f)
    }

    fn head(&self) -> io::Result<Arc<Vec<u8>>> {
        let mut g = self.head.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = g.as_ref() {
            return Ok(h.clone());
        }
        let h = Arc::new(self.fetcher.head(&self.entry).map_err(to_io)?);
        *g = Some(h.clone());
        Ok(h)
    }
}

impl io::Write for RepoFile {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(read_only())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl VfsFile for RepoFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        if end > self.entry.size {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        let fetched = self
            .whole
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if !fetched && self.entry.kind == FileKind::Part && end <= HEAD_BYTES as u64 {
            let h = self.head()?;
            if let Some(src) = h.get(offset as usize..end as usize) {
                buf.copy_from_slice(src);
                return Ok(());
            }
        }
        FileExt::read_exact_at(&*self.whole()?, buf, offset)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.entry.size)
    }

    fn set_len(&self, _: u64) -> io::Result<()> {
        Err(read_only())
    }

    fn sync_data(&self) -> io::Result<()> {
        Err(read_only())
    }

    fn sync_all(&self) -> io::Result<()> {
        Err(read_only())
    }
}

/// A file held in memory ([`RepoVfs::add_memory_file`]).
struct MemoryFile(Arc<Vec<u8>>);

impl io::Write for MemoryFile {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(read_only())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl VfsFile for MemoryFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.0.get(start..end))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.len() as u64)
    }

    fn set_len(&self, _: u64) -> io::Result<()> {
        Err(read_only())
    }

    fn sync_data(&self) -> io::Result<()> {
        Err(read_only())
    }

    fn sync_all(&self) -> io::Result<()> {
        Err(read_only())
    }
}
