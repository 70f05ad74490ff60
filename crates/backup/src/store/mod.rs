//! Object-store back ends and the decorators layered on them.
//!
//! Every repository byte goes through one `Arc<dyn ObjectStore>`: a base store chosen by the URL
//! (local directory made durable by [`local::LocalStore`], S3 and compatibles, GCS, Azure, memory) wrapped in layers, innermost first:
//! [`fault::FaultStore`] (tests only), [`retry::RetryStore`] (backoff with jitter, and resuming a
//! download that fails mid-body), [`throttle::ThrottleStore`] (bandwidth limits) and
//! object_store's own [`LimitStore`] (a cap on concurrent requests). The HTTP back ends also
//! keep object_store's request-level `RetryConfig`. Each of our layers (and the durable local
//! store) is a [`decorate::Decorator`]: it writes only the requests it changes, and
//! [`decorate::Decorated`] forwards the rest.

pub mod decorate;
pub mod fault;
pub mod local;
pub mod retry;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use object_store::limit::LimitStore;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};

use crate::error::{Error, Result};

pub type DynStore = Arc<dyn ObjectStore>;

/// How to reach and pace a repository's back end. Flags override the environment.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Normally from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; set here by tests.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// S3 path-style requests (`http://host/bucket/key`), needed by most S3 compatibles.
    pub path_style: bool,
    pub allow_http: bool,
    /// Concurrent requests at most.
    pub concurrency: usize,
    /// Bytes per second, 0 = unlimited.
    pub limit_upload: u64,
    pub limit_download: u64,
    pub retries: usize,
    pub backoff: BackoffConfig,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            path_style: false,
            allow_http: false,
            concurrency: 16,
            limit_upload: 0,
            limit_download: 0,
            retries: 5,
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(10),
                base: 2.0,
            },
        }
    }
}

impl StoreOptions {
    fn retry_config(&self) -> RetryConfig {
        RetryConfig {
            backoff: self.backoff.clone(),
            max_retries: self.retries,
            retry_timeout: Duration::from_secs(180),
        }
    }
}

/// Splits `scheme://bucket/prefix` into the bucket URL and the key prefix.
fn split_bucket(url: &str, scheme: &str) -> Result<(String, Option<Path>)> {
    let rest = &url[scheme.len() + 3..];
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::BadUrl {
            url: url.into(),
            detail: "no bucket name".into(),
        });
    }
    let prefix = prefix.trim_matches('/');
    let prefix = if prefix.is_empty() {
        None
    } else {
        Some(Path::parse(prefix).map_err(|e| Error::BadUrl {
            url: url.into(),
            detail: format!("bad prefix: {e}"),
        })?)
    };
    Ok((format!("{scheme}://{bucket}"), prefix))
}

fn with_prefix<T: ObjectStore>(store: T, prefix: Option<Path>) -> DynStore {
    match prefix {
        Some(p) => Arc::new(PrefixStore::new(store, p)),
        None => Arc::new(store),
    }
}

/// The local directory a plain path or `file://` URL names, if it is one.
pub fn local_dir(url: &str) -> Option<std::path::PathBuf> {
    if let Some(p) = url.strip_prefix("file://") {
        return Some(p.into());
    }
    if url.contains("://") {
        return None;
    }
    Some(url.into())
}

/// The base store for `url`, without layers. `create` makes a missing local directory.
pub fn base_store(url: &str, opts: &StoreOptions, create: bool) -> Result<DynStore> {
    let bad = |detail: String| Error::BadUrl {
        url: url.into(),
        detail,
    };
    if let Some(dir) = local_dir(url) {
        if !create && !dir.is_dir() {
            return Err(Error::NoRepository(url.into()));
        }
        // Durable puts and deletes: see `local`.
        return Ok(Arc::new(local::LocalStore::new(&dir, create)?));
    }
    if url == "memory://" {
        return Ok(Arc::new(InMemory::new()));
    }
    if url.starts_with("s3://") {
        let (bucket, prefix) = split_bucket(url, "s3")?;
        let mut b = object_store::aws::AmazonS3Builder::from_env()
            .with_url(bucket)
            .with_retry(opts.retry_config());
        if let Some(e) = &opts.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(r) = &opts.region {
            b = b.with_region(r);
        }
        if let Some(k) = &opts.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &opts.secret_access_key {
            b = b.with_secret_access_key(k);
        }
        if opts.path_style {
            b = b.with_virtual_hosted_style_request(false);
        }
        if opts.allow_http {
            b = b.with_allow_http(true);
        }
        let s = b.build().map_err(|e| bad(e.to_string()))?;
        return Ok(with_prefix(s, prefix));
    }
    if url.starts_with("gs://") {
        let (bucket, prefix) = split_bucket(url, "gs")?;
        let s = object_store::gcp::GoogleCloudStorageBuilder::from_env()
            .with_url(bucket)
            .with_retry(opts.retry_config())
            .build()
            .map_err(|e| bad(e.to_string()))?;
        return Ok(with_prefix(s, prefix));
    }
    if url.starts_with("az://") {
        let (container, prefix) = split_bucket(url, "az")?;
        let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
            .with_url(container)
            .with_retry(opts.retry_config());
        if opts.allow_http {
            b = b.with_allow_http(true);
        }
        let s = b.build().map_err(|e| bad(e.to_string()))?;
        return Ok(with_prefix(s, prefix));
    }
    Err(bad(
        "unknown scheme (use a path, file://, s3://, gs:// or az://)".into(),
    ))
}

/// Wraps a base store in the standard layers.
pub fn layered(base: DynStore, opts: &StoreOptions) -> DynStore {
    let retried = retry::RetryStore::new(base, opts.retries, opts.backoff.clone());
    let throttled =
        throttle::ThrottleStore::new(Arc::new(retried), opts.limit_upload, opts.limit_download);
    Arc::new(LimitStore::new(throttled, opts.concurrency.max(1)))
}

/// Opens `url` with every layer.
pub fn open(url: &str, opts: &StoreOptions, create: bool) -> Result<DynStore> {
    Ok(layered(base_store(url, opts, create)?, opts))
}

/// Parses a rate such as `10MiB`, `512KiB`, `2MB`, `1000` (bytes per second).
pub fn parse_rate(s: &str) -> Result<u64> {
    let t = s.trim().trim_end_matches("/s");
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| Error::InvalidArgument(format!("rate '{s}': expected e.g. 10MiB")))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(Error::InvalidArgument(format!(
                "rate '{s}': unknown unit '{other}'"
            )));
        }
    };
    Ok((n * mult) as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(local_dir("/a/b"), Some("/a/b".into()));
        assert_eq!(local_dir("file:///a/b"), Some("/a/b".into()));
        assert_eq!(local_dir("s3://b/p"), None);
        let (b, p) = split_bucket("s3://bucket/some/prefix/", "s3").unwrap();
        assert_eq!(b, "s3://bucket");
        assert_eq!(p.unwrap().as_ref(), "some/prefix");
        assert!(split_bucket("s3:///x", "s3").is_err());
        assert!(base_store("ftp://x", &StoreOptions::default(), false).is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("10MiB").unwrap(), 10 << 20);
        assert_eq!(parse_rate("2MB/s").unwrap(), 2_000_000);
        assert_eq!(parse_rate("1000").unwrap(), 1000);
        assert!(parse_rate("fast").is_err());
    }
}
