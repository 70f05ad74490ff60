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

use std::path::{Path as FsPath, PathBuf};

use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

use crate::error::Error;

/// A durable local repository directory.
#[derive(Debug)]
pub struct LocalStore {
    inner: std::sync::Arc<LocalFileSystem>,
}

impl LocalStore {
    /// Serve `dir`, creating it (durably) when `create` is set.
    pub fn new(dir: &FsPath, create: bool) -> crate::Result<LocalStore> {
        if create && !dir.is_dir() {
            create_dir_durably(dir)?;
        }
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| Error::BadUrl {
                url: dir.display().to_string(),
                detail: e.to_string(),
            })?
            .with_automatic_cleanup(true)
            .with_fsync(true);
        Ok(LocalStore {
            inner: std::sync::Arc::new(fs),
        })
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

impl std::fmt::Display for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Durable({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let fs = self.inner.clone();
        self.inner
            .delete_stream(locations)
            .then(move |res| {
                let fs = fs.clone();
                async move {
                    let location = res?;
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
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

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
}
