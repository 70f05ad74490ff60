//! Retries with exponential backoff and full jitter, and downloads that resume where they broke.
//!
//! object_store's HTTP clients retry a request that fails before its body starts; a body that
//! breaks half way (a reset connection during a 1 GiB part) surfaces to the caller. This layer
//! re-requests the rest of the object from the byte where it stopped, pinned to the same ETag so
//! two versions are never spliced, and retries whole requests on transient errors for back ends
//! without their own retry loop (the local file system).

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    BackoffConfig, CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use rand::Rng;

use super::DynStore;
use super::decorate::{Decorated, Decorator};

/// The retry layer as an object store.
pub type RetryStore = Decorated<RetryLayer>;

#[derive(Debug)]
pub struct RetryLayer {
    inner: DynStore,
    max_retries: usize,
    backoff: BackoffConfig,
}

impl RetryStore {
    pub fn new(inner: DynStore, max_retries: usize, backoff: BackoffConfig) -> Self {
        Decorated(RetryLayer {
            inner,
            max_retries,
            backoff,
        })
    }
}

/// Only errors that another attempt may cure; "not found" or "already exists" are answers.
pub fn is_transient(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::Generic { .. })
}

/// Full jitter: a uniformly random wait up to the exponential bound.
pub fn backoff_delay(cfg: &BackoffConfig, attempt: usize) -> Duration {
    let exp = cfg.base.powi(attempt.min(30) as i32);
    let bound = cfg.init_backoff.as_secs_f64() * exp;
    let bound = bound.min(cfg.max_backoff.as_secs_f64());
    Duration::from_secs_f64(rand::rng().random_range(0.0..=bound.max(0.0)))
}

impl RetryLayer {
    async fn retry<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Err(e) if is_transient(&e) && attempt < self.max_retries => {
                    tracing::debug!(error = %e, attempt, "retrying object store request");
                    tokio::time::sleep(backoff_delay(&self.backoff, attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

struct Resume {
    store: DynStore,
    location: Path,
    stream: BoxStream<'static, Result<Bytes>>,
    next: u64,
    end: u64,
    etag: Option<String>,
    attempts: usize,
    max: usize,
    backoff: BackoffConfig,
    done: bool,
}

fn resuming(
    r: GetResult,
    store: DynStore,
    location: Path,
    max: usize,
    b: BackoffConfig,
) -> GetResult {
    let range: Range<u64> = r.range.clone();
    let meta = r.meta.clone();
    let attributes = r.attributes.clone();
    let extensions = r.extensions.clone();
    let state = Resume {
        store,
        location,
        etag: meta.e_tag.clone(),
        next: range.start,
        end: range.end,
        stream: r.into_stream(),
        attempts: 0,
        max,
        backoff: b,
        done: false,
    };
    let stream = futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            match st.stream.next().await {
                None => return None,
                Some(Ok(b)) => {
                    st.next += b.len() as u64;
                    return Some((Ok(b), st));
                }
                Some(Err(e)) => {
                    if !is_transient(&e) || st.attempts >= st.max || st.next >= st.end {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                    tracing::debug!(error = %e, at = st.next, "resuming broken download");
                    tokio::time::sleep(backoff_delay(&st.backoff, st.attempts)).await;
                    st.attempts += 1;
                    let opts = GetOptions {
                        range: Some(GetRange::Bounded(st.next..st.end)),
                        if_match: st.etag.clone(),
                        ..Default::default()
                    };
                    st.stream = match st.store.get_opts(&st.location, opts).await {
                        Ok(r) => r.into_stream(),
                        Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
                    };
                }
            }
        }
    });
    GetResult {
        // Fused: `GetResult::bytes` polls once more after the end of an empty object.
        payload: GetResultPayload::Stream(stream.fuse().boxed()),
        meta,
        range,
        attributes,
        extensions,
    }
}

#[async_trait]
impl Decorator for RetryLayer {
    const NAME: &'static str = "Retry";

    fn inner(&self) -> &DynStore {
        &self.inner
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.retry(|| self.inner.put_opts(location, payload.clone(), opts.clone()))
            .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.retry(|| self.inner.put_multipart_opts(location, opts.clone()))
            .await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let head = options.head;
        let r = self
            .retry(|| self.inner.get_opts(location, options.clone()))
            .await?;
        if head {
            return Ok(r);
        }
        Ok(resuming(
            r,
            self.inner.clone(),
            location.clone(),
            self.max_retries,
            self.backoff.clone(),
        ))
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        retrying_list(
            self.inner.clone(),
            prefix.cloned(),
            self.max_retries,
            self.backoff.clone(),
        )
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.retry(|| self.inner.list_with_delimiter(prefix)).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.retry(|| self.inner.copy_opts(from, to, options.clone()))
            .await
    }
}

struct ListState {
    store: DynStore,
    prefix: Option<Path>,
    stream: BoxStream<'static, Result<ObjectMeta>>,
    /// Everything already handed to the caller: a restarted listing skips these. Back ends do
    /// not all list in key order (the local file system does not), so resuming "after the last
    /// key" could skip entries; starting over and filtering cannot.
    seen: std::collections::HashSet<Path>,
    attempts: usize,
    max: usize,
    backoff: BackoffConfig,
}

/// A listing that survives transient errors mid-stream: one failed LIST page used to fail a
/// whole backup or restore (found by the S3 fault loop).
fn retrying_list(
    store: DynStore,
    prefix: Option<Path>,
    max: usize,
    backoff: BackoffConfig,
) -> BoxStream<'static, Result<ObjectMeta>> {
    let state = ListState {
        stream: store.list(prefix.as_ref()),
        store,
        prefix,
        seen: std::collections::HashSet::new(),
        attempts: 0,
        max,
        backoff,
    };
    futures::stream::unfold(Some(state), |st| async move {
        let mut st = st?;
        loop {
            match st.stream.next().await {
                None => return None,
                Some(Ok(meta)) => {
                    if st.seen.insert(meta.location.clone()) {
                        return Some((Ok(meta), Some(st)));
                    }
                }
                Some(Err(e)) if is_transient(&e) && st.attempts < st.max => {
                    tracing::debug!(error = %e, attempt = st.attempts, "restarting a listing");
                    tokio::time::sleep(backoff_delay(&st.backoff, st.attempts)).await;
                    st.attempts += 1;
                    st.stream = st.store.list(st.prefix.as_ref());
                }
                Some(Err(e)) => return Some((Err(e), None)),
            }
        }
    })
    .boxed()
}
