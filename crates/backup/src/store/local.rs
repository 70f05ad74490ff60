//! The local-directory back end: object_store's `LocalFileSystem` made durable.
//!
//! A repository on a local disk must survive a power cut as an object store would: once a put
//! returns, the object and its directory entry are on stable storage, and once a delete
//! returns, the object cannot come back. `LocalFileSystem::with_fsync(true)` gives the first
//! (staged file fsynced, renamed into place, parent directories fsynced). Deletes it leaves to
//! the page cache, so [`LocalStore`] fsyncs the parent directory after each one: otherwise a
//! pruned manifest could reappear after a crash while the objects only it referenced stay
//! deleted (a later put into their directory makes those removals durable), and the
//! repository would hold a snapshot that claims data it does not have.
//!
//! Reads: `LocalFileSystem` hands back an open file that `GetResult::into_stream` reads in
//! 8 KiB chunks, each on the blocking pool (a 1 GB restore made some 130,000 such hops:
//! 30 % of its wall time in futex and `sched_yield`). [`DurableLocal`] streams it in
//! [`READ_CHUNK`] pieces instead.

use std::path::{Path as FsPath, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, GetResultPayload, ObjectStore, ObjectStoreExt, PutOptions, PutPayload,
    PutResult, Result,
};

use super::DynStore;
use super::decorate::{Decorated, Decorator};
use crate::error::Error;

/// A durable local repository directory.
pub type LocalStore = Decorated<DurableLocal>;

/// `LocalFileSystem` with durable deletes (the one request it changes), and quick locks.
#[derive(Debug)]
pub struct DurableLocal {
    fs: std::sync::Arc<LocalFileSystem>,
    /// `fs` again, as the store the other requests are forwarded to.
    inner: DynStore,
    /// The same directory without fsync or directory cleanup, for [`is_lock`] objects.
    quick: std::sync::Arc<LocalFileSystem>,
}

/// Whether `location` is a repository lock (`locks/…`). Locks are written and removed without
/// fsync: a lock only matters while its holder runs, and a power cut ends every holder on this
/// machine. What a crash can leave is a lock of an earlier boot (stale at once: its boot id
/// differs) or an unreadable one (stale once its file is older than the lock timeout), so
/// durability would buy nothing; each backup used to pay ~6 fsyncs for it (the `locks/`
/// directory made and removed again, the lock staged, renamed and removed), as much as its
/// whole plan when nothing is new.
fn is_lock(location: &Path) -> bool {
    location.as_ref().starts_with("locks/")
}

impl LocalStore {
    /// Serve `dir`, creating it (durably) when `create` is set.
    pub fn new(dir: &FsPath, create: bool) -> crate::Result<LocalStore> {
        if create && !dir.is_dir() {
            create_dir_durably(dir)?;
        }
        let open = || {
            LocalFileSystem::new_with_prefix(dir).map_err(|e| Error::BadUrl {
                url: dir.display().to_string(),
                detail: e.to_string(),
            })
        };
        let fs = open()?.with_automatic_cleanup(true).with_fsync(true);
        let fs = std::sync::Arc::new(fs);
        Ok(Decorated(DurableLocal {
            inner: fs.clone(),
            fs,
            quick: std::sync::Arc::new(open()?),
        }))
    }
}

/// `create_dir_all`, then fsync every directory whose entries it changed.
fn create_dir_durably(dir: &FsPath) -> crate::Result<()> {
    let mut existing = dir;
    while !existing.is_dir() {
        match existing.parent() {
            Some(p) if !p.as_os_str().is_empty() => existing = p,
            _ => break,
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut d = dir;
    while let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
        fsync_dir(parent).map_err(|e| Error::io(parent, e))?;
        if d == existing || parent == existing {
            break;
        }
        d = parent;
    }
    Ok(())
}

fn fsync_dir(dir: &FsPath) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Bytes read from a local object per blocking call (a frame and its overhead fit).
pub const READ_CHUNK: usize = 1 << 20;

/// `r`'s body as a stream of [`READ_CHUNK`] pieces when it is a local file (others as they
/// are).
fn large_chunks(r: GetResult) -> GetResult {
    let GetResultPayload::File(file, path) = r.payload else {
        return r;
    };
    let (start, len) = (r.range.start, r.range.end - r.range.start);
    let stream = futures::stream::try_unfold(
        (Some(file), path, start, len),
        |(file, path, at, left)| async move {
            let Some(file) = file.filter(|_| left > 0) else {
                return Ok(None);
            };
            let want = left.min(READ_CHUNK as u64) as usize;
            let (file, path, buf) = tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; want];
                let mut got = 0;
                while got < want {
                    match file.read_at(&mut buf[got..], at + got as u64) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(read_error(&path, e)),
                    }
                }
                buf.truncate(got);
                Ok((file, path, buf))
            })
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "local",
                source: Box::new(e),
            })??;
            if buf.is_empty() {
                // Shorter than its metadata said (truncated meanwhile): the reader's size
                // and digest checks report it.
                return Ok(None);
            }
            let n = buf.len() as u64;
            Ok(Some((
                Bytes::from(buf),
                (Some(file), path, at + n, left - n),
            )))
        },
    );
    GetResult {
        // Fused: `GetResult::bytes` polls once more after the end, and an unfold panics then
        // (an empty file, such as a lock torn by a power cut, ends at once).
        payload: GetResultPayload::Stream(stream.fuse().boxed()),
        ..r
    }
}

fn read_error(path: &FsPath, e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "local",
        source: format!("reading {}: {e}", path.display()).into(),
    }
}

/// Fsync the nearest existing ancestor of a deleted file (automatic cleanup may have removed
/// its now empty parent directories too).
fn sync_after_delete(file: PathBuf) -> std::io::Result<()> {
    let mut d = file.as_path();
    while let Some(parent) = d.parent() {
        match fsync_dir(parent) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => d = parent,
            other => return other,
        }
    }
    Ok(())
}

#[async_trait]
impl Decorator for DurableLocal {
    const NAME: &'static str = "Durable";

    fn inner(&self) -> &DynStore {
        &self.inner
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let store = if is_lock(location) {
            &self.quick
        } else {
            &self.fs
        };
        store.put_opts(location, payload, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.fs.get_opts(location, options).await.map(large_chunks)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let (fs, quick) = (self.fs.clone(), self.quick.clone());
        locations
            .map(move |res| {
                let (fs, quick) = (fs.clone(), quick.clone());
                async move {
                    let location = res?;
                    if is_lock(&location) {
                        quick.delete(&location).await?;
                        return Ok(location);
                    }
                    fs.delete(&location).await?;
                    let file = fs.path_to_filesystem(&location)?;
                    tokio::task::spawn_blocking(move || sync_after_delete(file))
                        .await
                        .map_err(|e| object_store::Error::Generic {
                            store: "local",
                            source: Box::new(e),
                        })?
                        .map_err(|e| object_store::Error::Generic {
                            store: "local",
                            source: Box::new(e),
                        })?;
                    Ok(location)
                }
            })
            .buffered(8)
            .boxed()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creates_the_directory_and_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("a/b/repo");
        let s = LocalStore::new(&root, true).unwrap();
        assert!(root.is_dir());
        let p = Path::from("data/ab/abcd");
        s.put(&p, PutPayload::from_static(b"x")).await.unwrap();
        assert_eq!(s.get(&p).await.unwrap().bytes().await.unwrap(), "x");
        s.delete(&p).await.unwrap();
        assert!(s.head(&p).await.is_err());
        // Automatic cleanup removed the empty `data/ab`; the sync found an existing ancestor.
        assert!(!root.join("data/ab").exists());
    }

    /// Locks take the quick path: written, read, overwritten and removed like any object,
    /// and their directory stays (no directory made and removed again per backup).
    #[tokio::test]
    async fn locks_round_trip_and_keep_their_directory() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalStore::new(d.path(), true).unwrap();
        let p = Path::from("locks/backup-0123456789abcdef");
        s.put(&p, PutPayload::from_static(b"one")).await.unwrap();
        let create = object_store::PutOptions {
            mode: object_store::PutMode::Create,
            ..Default::default()
        };
        assert!(matches!(
            s.put_opts(&p, PutPayload::from_static(b"two"), create)
                .await,
            Err(object_store::Error::AlreadyExists { .. })
        ));
        s.put(&p, PutPayload::from_static(b"three")).await.unwrap();
        assert_eq!(s.get(&p).await.unwrap().bytes().await.unwrap(), "three");
        s.delete(&p).await.unwrap();
        assert!(matches!(
            s.get(&p).await,
            Err(object_store::Error::NotFound { .. })
        ));
        assert!(matches!(
            s.delete(&p).await,
            Err(object_store::Error::NotFound { .. })
        ));
        assert!(d.path().join("locks").is_dir());
    }

    /// An empty file (a lock torn by a power cut) reads back as no bytes.
    #[tokio::test]
    async fn an_empty_file_reads_as_empty() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalStore::new(d.path(), true).unwrap();
        std::fs::create_dir_all(d.path().join("locks")).unwrap();
        std::fs::write(d.path().join("locks/backup-00"), b"").unwrap();
        let p = Path::from("locks/backup-00");
        assert!(s.get(&p).await.unwrap().bytes().await.unwrap().is_empty());
    }
}
