//! One forwarding mechanism for object-store decorators.
//!
//! A decorator (fault injection, retries, bandwidth limits) implements [`Decorator`]: it names
//! the store it wraps and overrides only the requests it changes; every other request is
//! forwarded to the inner store by the trait's default methods. [`Decorated`] turns any
//! decorator into an [`ObjectStore`]. Requests that `ObjectStore` itself derives from others
//! (`get_ranges`, `list_with_offset`, `rename_opts`) keep those defaults, so they pass through
//! the decorator's own `get_opts`, `list` and `copy_opts` rather than around them.

use std::fmt;
use std::ops::Deref;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

use super::DynStore;

/// A layer over another store. Override what the layer changes; the rest is forwarded.
#[async_trait]
pub trait Decorator: fmt::Debug + Send + Sync + 'static {
    /// Shown by `Display` as `NAME(inner)`.
    const NAME: &'static str;

    /// The store this layer wraps.
    fn inner(&self) -> &DynStore;

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner().put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner().put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner().get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner().delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner().list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner().list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner().copy_opts(from, to, options).await
    }
}

/// A [`Decorator`] as an [`ObjectStore`]. Dereferences to the decorator (a test reaches the
/// fault layer's counters through it).
#[derive(Debug)]
pub struct Decorated<D>(pub D);

impl<D> Deref for Decorated<D> {
    type Target = D;

    fn deref(&self) -> &D {
        &self.0
    }
}

impl<D: Decorator> fmt::Display for Decorated<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", D::NAME, self.0.inner())
    }
}

#[async_trait]
impl<D: Decorator> ObjectStore for Decorated<D> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.0.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.0.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.0.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.0.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.0.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    use super::*;

    /// Changes one request (counts puts); everything else must reach the inner store.
    #[derive(Debug)]
    struct CountPuts {
        inner: DynStore,
        puts: AtomicUsize,
    }

    #[async_trait]
    impl Decorator for CountPuts {
        const NAME: &'static str = "CountPuts";

        fn inner(&self) -> &DynStore {
            &self.inner
        }

        async fn put_opts(
            &self,
            location: &Path,
            payload: PutPayload,
            opts: PutOptions,
        ) -> Result<PutResult> {
            self.puts.fetch_add(1, Ordering::SeqCst);
            self.inner.put_opts(location, payload, opts).await
        }
    }

    #[tokio::test]
    async fn a_decorator_overrides_one_request_and_forwards_the_rest() {
        let base: DynStore = Arc::new(InMemory::new());
        let d = Decorated(CountPuts {
            inner: base.clone(),
            puts: AtomicUsize::new(0),
        });
        assert_eq!(d.to_string(), format!("CountPuts({base})"));
        let a = Path::from("a/x");
        d.put(&a, "hello".into()).await.unwrap();
        assert_eq!(d.puts.load(Ordering::SeqCst), 1);
        // Forwarded: get, head, copy, list, list_with_delimiter, delete.
        assert_eq!(
            &d.get(&a).await.unwrap().bytes().await.unwrap()[..],
            b"hello"
        );
        assert_eq!(d.head(&a).await.unwrap().size, 5);
        let b = Path::from("a/y");
        d.copy(&a, &b).await.unwrap();
        let listed: Vec<_> = d.list(Some(&Path::from("a"))).try_collect().await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(
            d.list_with_delimiter(None).await.unwrap().common_prefixes,
            vec![Path::from("a")]
        );
        d.delete(&a).await.unwrap();
        assert!(base.head(&a).await.is_err());
        assert_eq!(base.head(&b).await.unwrap().size, 5);
        assert_eq!(d.puts.load(Ordering::SeqCst), 1, "copy is not a put");
    }
}
