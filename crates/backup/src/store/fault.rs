//! A fault-injecting layer for tests: fails the next N puts or gets with a transient error,
//! breaks download bodies half way, and counts requests and uploaded bytes (the incremental
//! tests assert on those counts).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result, UploadPart,
};

use super::DynStore;

#[derive(Debug, Default)]
pub struct Faults {
    pub fail_puts: AtomicUsize,
    pub fail_gets: AtomicUsize,
    /// Break this many download bodies after `cut_after` bytes.
    pub cut_bodies: AtomicUsize,
    pub cut_after: AtomicU64,
    pub puts: AtomicUsize,
    pub gets: AtomicUsize,
    pub bytes_put: AtomicU64,
}

/// Takes one unit from `c` if it is positive.
fn take(c: &AtomicUsize) -> bool {
    c.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "fault",
        source: format!("injected {what} failure").into(),
    }
}

#[derive(Debug)]
pub struct FaultStore {
    inner: DynStore,
    pub faults: Arc<Faults>,
}

impl FaultStore {
    pub fn new(inner: DynStore) -> Self {
        FaultStore {
            inner,
            faults: Arc::new(Faults::default()),
        }
    }
}

impl std::fmt::Display for FaultStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fault({})", self.inner)
    }
}

#[derive(Debug)]
struct CountedUpload {
    inner: Box<dyn MultipartUpload>,
    faults: Arc<Faults>,
}

#[async_trait]
impl MultipartUpload for CountedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.faults
            .bytes_put
            .fetch_add(data.content_length() as u64, Ordering::SeqCst);
        if take(&self.faults.fail_puts) {
            return Box::pin(async { Err(injected("part upload")) });
        }
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        self.faults.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.complete().await
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for FaultStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        if take(&self.faults.fail_puts) {
            return Err(injected("put"));
        }
        let n = payload.content_length() as u64;
        let r = self.inner.put_opts(location, payload, opts).await?;
        self.faults.puts.fetch_add(1, Ordering::SeqCst);
        self.faults.bytes_put.fetch_add(n, Ordering::SeqCst);
        Ok(r)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(CountedUpload {
            inner,
            faults: self.faults.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.faults.gets.fetch_add(1, Ordering::SeqCst);
        if take(&self.faults.fail_gets) {
            return Err(injected("get"));
        }
        let head = options.head;
        let r = self.inner.get_opts(location, options).await?;
        if head || !take(&self.faults.cut_bodies) {
            return Ok(r);
        }
        let limit = self.faults.cut_after.load(Ordering::SeqCst);
        let (meta, range, attributes, extensions) = (
            r.meta.clone(),
            r.range.clone(),
            r.attributes.clone(),
            r.extensions.clone(),
        );
        // Deliver `limit` bytes, then fail; a body shorter than that arrives whole.
        let stream = futures::stream::unfold(
            (r.into_stream(), limit, false),
            |(mut inner, left, done)| async move {
                if done {
                    return None;
                }
                if left == 0 {
                    return Some((Err(injected("body")), (inner, 0, true)));
                }
                match inner.next().await {
                    None => None,
                    Some(Err(e)) => Some((Err(e), (inner, 0, true))),
                    Some(Ok(b)) => {
                        let keep = b.len().min(left as usize);
                        Some((Ok(b.slice(..keep)), (inner, left - keep as u64, false)))
                    }
                }
            },
        )
        .boxed();
        Ok(GetResult {
            payload: GetResultPayload::Stream(stream),
            meta,
            range,
            attributes,
            extensions,
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
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
