//! Upload and download bandwidth limits (`--limit-upload`, `--limit-download`).
//!
//! One token bucket per direction shared by every request of the process, so the limit holds
//! for the sum of parallel transfers. A virtual clock keeps it simple: each transfer books the
//! time its bytes take at the configured rate and sleeps until its slot.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::StreamExt;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, GetResultPayload, MultipartUpload, PutMultipartOptions, PutOptions,
    PutPayload, PutResult, Result, UploadPart,
};

use super::DynStore;
use super::decorate::{Decorated, Decorator};

#[derive(Debug)]
pub struct Bucket {
    /// Bytes per second; 0 means unlimited.
    rate: u64,
    next: Mutex<Instant>,
}

impl Bucket {
    pub fn new(rate: u64) -> Self {
        Bucket {
            rate,
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits until `n` more bytes fit under the rate.
    pub async fn take(&self, n: u64) {
        if self.rate == 0 || n == 0 {
            return;
        }
        let wait = {
            let mut next = match self.next.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + Duration::from_secs_f64(n as f64 / self.rate as f64);
            start.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The bandwidth layer as an object store.
pub type ThrottleStore = Decorated<ThrottleLayer>;

#[derive(Debug)]
pub struct ThrottleLayer {
    inner: DynStore,
    up: Arc<Bucket>,
    down: Arc<Bucket>,
}

impl ThrottleStore {
    pub fn new(inner: DynStore, upload: u64, download: u64) -> Self {
        Decorated(ThrottleLayer {
            inner,
            up: Arc::new(Bucket::new(upload)),
            down: Arc::new(Bucket::new(download)),
        })
    }
}

#[derive(Debug)]
struct ThrottledUpload {
    inner: Box<dyn MultipartUpload>,
    up: Arc<Bucket>,
}

#[async_trait]
impl MultipartUpload for ThrottledUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let up = self.up.clone();
        let n = data.content_length() as u64;
        let fut = self.inner.put_part(data);
        Box::pin(async move {
            up.take(n).await;
            fut.await
        })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        self.inner.complete().await
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}

#[async_trait]
impl Decorator for ThrottleLayer {
    const NAME: &'static str = "Throttle";

    fn inner(&self) -> &DynStore {
        &self.inner
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.up.take(payload.content_length() as u64).await;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(ThrottledUpload {
            inner,
            up: self.up.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let r = self.inner.get_opts(location, options).await?;
        if self.down.rate == 0 {
            return Ok(r);
        }
        let down = self.down.clone();
        let (meta, range, attributes, extensions) = (
            r.meta.clone(),
            r.range.clone(),
            r.attributes.clone(),
            r.extensions.clone(),
        );
        let stream = r
            .into_stream()
            .then(move |item| {
                let down = down.clone();
                async move {
                    if let Ok(b) = &item {
                        down.take(b.len() as u64).await;
                    }
                    item
                }
            })
            .boxed();
        Ok(GetResult {
            payload: GetResultPayload::Stream(stream),
            meta,
            range,
            attributes,
            extensions,
        })
    }
}
