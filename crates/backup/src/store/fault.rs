//! A fault-injecting layer for tests: fails the next N puts or gets with a transient error,
//! breaks download bodies half way, and counts requests and uploaded bytes (the incremental
//! tests assert on those counts).
//!
//! It also injects random faults on a configurable fraction of requests ([`RandomFaults`],
//! seeded): errors before the request reaches the store, errors after it succeeded (the reply
//! was lost: the object exists but the caller was told it failed), stalls, and download bodies
//! cut off at a random byte. Every injected fault is counted by kind ([`Injected`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result, UploadPart,
};

use super::DynStore;
use super::decorate::{Decorated, Decorator};

#[derive(Debug, Default)]
pub struct Faults {
    pub fail_puts: AtomicUsize,
    /// Let this many puts reach the store, then report them failed (a reply lost on the way
    /// back): the caller's retry finds its own object already there.
    pub lose_put_replies: AtomicUsize,
    pub fail_gets: AtomicUsize,
    /// Break this many listings after their first entry (a LIST page failing mid-stream).
    pub break_lists: AtomicUsize,
    /// Break this many download bodies after `cut_after` bytes.
    pub cut_bodies: AtomicUsize,
    pub cut_after: AtomicU64,
    pub puts: AtomicUsize,
    pub gets: AtomicUsize,
    pub bytes_put: AtomicU64,
    /// Random faults on a fraction of requests (off when `None`).
    random: Mutex<Option<RandomState>>,
    /// When set, the counted faults above (`fail_puts`, `lose_put_replies`, `fail_gets`) hit
    /// only requests for paths under this prefix (e.g. `snapshots/` to fail a manifest put).
    scope: Mutex<Option<String>>,
    pub injected: Injected,
}

/// Random faults: each request draws once; with probability `rate` it gets one fault of a kind
/// that fits the request.
#[derive(Debug, Clone, Copy)]
pub struct RandomFaults {
    pub seed: u64,
    /// Fraction of requests, 0.0..=1.0.
    pub rate: f64,
    /// How long an injected stall holds the request before letting it through.
    pub stall: Duration,
}

#[derive(Debug)]
struct RandomState {
    cfg: RandomFaults,
    rng: u64,
}

/// Counts of the random faults injected, by kind.
#[derive(Debug, Default)]
pub struct Injected {
    /// Failed before reaching the store.
    pub errors: AtomicU64,
    /// Reached the store and succeeded, then reported as failed.
    pub lost_replies: AtomicU64,
    pub stalls: AtomicU64,
    /// Download bodies that broke after a random number of bytes.
    pub cut_bodies: AtomicU64,
}

impl Injected {
    pub fn total(&self) -> u64 {
        [
            &self.errors,
            &self.lost_replies,
            &self.stalls,
            &self.cut_bodies,
        ]
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .sum()
    }
}

/// What a request draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Error,
    LostReply,
    Stall(Duration),
    /// Cut the body after this fraction (per mille) of its bytes.
    Cut(u64),
}

/// The kinds a request can suffer.
#[derive(Clone, Copy)]
enum Req {
    /// A write: error, lost reply or stall.
    Write,
    /// A read with a body: error, stall or cut body.
    Read,
    /// Metadata (head, list): error or stall.
    Meta,
}

impl Faults {
    /// Limits the counted faults to paths under `prefix` (`None`: every path).
    pub fn set_scope(&self, prefix: Option<&str>) {
        *self.scope.lock().unwrap_or_else(|p| p.into_inner()) = prefix.map(str::to_string);
    }

    /// Takes one counted fault of `c` for a request on `path`, if it is in scope.
    fn take_for(&self, c: &AtomicUsize, path: &Path) -> bool {
        let in_scope = match &*self.scope.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(prefix) => path.as_ref().starts_with(prefix.as_str()),
            None => true,
        };
        in_scope && take(c)
    }

    /// Turns random faults on (or off with `None`).
    pub fn set_random(&self, cfg: Option<RandomFaults>) {
        let mut g = self.random.lock().unwrap_or_else(|p| p.into_inner());
        *g = cfg.map(|cfg| RandomState {
            cfg,
            rng: cfg.seed | 1,
        });
    }

    fn draw(&self, req: Req) -> Fault {
        let mut g = self.random.lock().unwrap_or_else(|p| p.into_inner());
        let Some(st) = g.as_mut() else {
            return Fault::None;
        };
        let mut next = || {
            st.rng ^= st.rng >> 12;
            st.rng ^= st.rng << 25;
            st.rng ^= st.rng >> 27;
            st.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        let roll = (next() >> 11) as f64 / (1u64 << 53) as f64;
        if roll >= st.cfg.rate {
            return Fault::None;
        }
        let pick = next();
        let stall = st.cfg.stall;
        let f = match (req, pick % 3) {
            (Req::Write, 0) | (Req::Read, 0) | (Req::Meta, 0) => Fault::Error,
            (Req::Write, 1) => Fault::LostReply,
            (Req::Read, 1) => Fault::Cut((pick >> 8) % 1000),
            _ => Fault::Stall(stall),
        };
        let counter = match f {
            Fault::Error => &self.injected.errors,
            Fault::LostReply => &self.injected.lost_replies,
            Fault::Stall(_) => &self.injected.stalls,
            Fault::Cut(_) => &self.injected.cut_bodies,
            Fault::None => return f,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        f
    }
}

/// Applies a drawn fault around `op`: fail before, stall, or run and then fail.
async fn around<T, F>(fault: Fault, what: &str, op: F) -> Result<T>
where
    F: std::future::Future<Output = Result<T>>,
{
    match fault {
        Fault::Error => Err(injected(what)),
        Fault::Stall(d) => {
            tokio::time::sleep(d).await;
            op.await
        }
        Fault::LostReply => {
            op.await?;
            Err(injected(&format!("{what} reply")))
        }
        Fault::None | Fault::Cut(_) => op.await,
    }
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

/// The fault layer as an object store.
pub type FaultStore = Decorated<FaultLayer>;

#[derive(Debug)]
pub struct FaultLayer {
    inner: DynStore,
    pub faults: Arc<Faults>,
}

impl FaultStore {
    pub fn new(inner: DynStore) -> Self {
        Decorated(FaultLayer {
            inner,
            faults: Arc::new(Faults::default()),
        })
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
        let fault = self.faults.draw(Req::Write);
        let part = self.inner.put_part(data);
        Box::pin(around(fault, "part upload", part))
    }

    async fn complete(&mut self) -> Result<PutResult> {
        self.faults.puts.fetch_add(1, Ordering::SeqCst);
        let fault = self.faults.draw(Req::Write);
        around(fault, "multipart complete", self.inner.complete()).await
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}

#[async_trait]
impl Decorator for FaultLayer {
    const NAME: &'static str = "Fault";

    fn inner(&self) -> &DynStore {
        &self.inner
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        if self.faults.take_for(&self.faults.fail_puts, location) {
            return Err(injected("put"));
        }
        let n = payload.content_length() as u64;
        let fault = self.faults.draw(Req::Write);
        let r = around(fault, "put", self.inner.put_opts(location, payload, opts)).await?;
        self.faults.puts.fetch_add(1, Ordering::SeqCst);
        self.faults.bytes_put.fetch_add(n, Ordering::SeqCst);
        if self
            .faults
            .take_for(&self.faults.lose_put_replies, location)
        {
            return Err(injected("put reply"));
        }
        Ok(r)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let fault = self.faults.draw(Req::Meta);
        let inner = around(
            fault,
            "multipart start",
            self.inner.put_multipart_opts(location, opts),
        )
        .await?;
        Ok(Box::new(CountedUpload {
            inner,
            faults: self.faults.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.faults.gets.fetch_add(1, Ordering::SeqCst);
        if self.faults.take_for(&self.faults.fail_gets, location) {
            return Err(injected("get"));
        }
        let head = options.head;
        let fault = self.faults.draw(if head { Req::Meta } else { Req::Read });
        let r = around(fault, "get", self.inner.get_opts(location, options)).await?;
        let limit = match fault {
            Fault::Cut(per_mille) if !head => (r.range.end - r.range.start) * per_mille / 1000,
            _ if !head && take(&self.faults.cut_bodies) => {
                self.faults.cut_after.load(Ordering::SeqCst)
            }
            _ => return Ok(r),
        };
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

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if take(&self.faults.break_lists) {
            return self
                .inner
                .list(prefix)
                .take(1)
                .chain(futures::stream::once(async { Err(injected("list page")) }))
                .boxed();
        }
        match self.faults.draw(Req::Meta) {
            Fault::Error => futures::stream::once(async { Err(injected("list")) }).boxed(),
            Fault::Stall(d) => {
                let inner = self.inner.list(prefix);
                futures::stream::once(tokio::time::sleep(d))
                    .filter_map(|()| async { None::<Result<ObjectMeta>> })
                    .chain(inner)
                    .boxed()
            }
            _ => self.inner.list(prefix),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let fault = self.faults.draw(Req::Meta);
        around(fault, "list", self.inner.list_with_delimiter(prefix)).await
    }
}
