//! An S3 server inside the harness (s3s over s3s-fs, as the backup crate's tests run it), on
//! its own tokio runtime thread, that counts the requests it answers by method and the bytes
//! of the bodies it serves: what querying a backup on object storage costs in requests and
//! transfer, measured at the server rather than trusted from the client.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

pub const ACCESS: &str = "strata-bench-access";
pub const SECRET: &str = "strata-bench-secret";
pub const BUCKET: &str = "backups";

/// Requests and served bytes since the server started (or the last [`S3::take`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub by_method: BTreeMap<String, u64>,
    /// Body bytes of the responses (Content-Length, or the body's exact size).
    pub bytes_served: u64,
}

impl Counts {
    pub fn requests(&self) -> u64 {
        self.by_method.values().sum()
    }

    pub fn of(&self, method: &str) -> u64 {
        self.by_method.get(method).copied().unwrap_or(0)
    }
}

pub struct S3 {
    pub addr: std::net::SocketAddr,
    counts: Arc<Mutex<Counts>>,
    root: PathBuf,
    _rt: tokio::runtime::Runtime,
}

impl S3 {
    /// Serves the directory `root` (created if missing; bucket [`BUCKET`] inside it).
    pub fn start(root: &Path) -> Result<S3, String> {
        let bucket = root.join(BUCKET);
        std::fs::create_dir_all(&bucket)
            .map_err(|e| format!("create {}: {e}", bucket.display()))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-s3")
            .enable_all()
            .build()
            .map_err(|e| format!("s3 runtime: {e}"))?;
        let fs = s3s_fs::FileSystem::new(root).map_err(|e| format!("s3s-fs: {e:?}"))?;
        let mut b = S3ServiceBuilder::new(fs);
        b.set_auth(SimpleAuth::from_single(ACCESS, SECRET));
        let service = b.build();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .map_err(|e| format!("s3 bind: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("s3 local_addr: {e}"))?;
        let counts: Arc<Mutex<Counts>> = Arc::default();
        let shared = counts.clone();
        rt.spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let (svc, counts) = (service.clone(), shared.clone());
                let counted = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let method = req.method().to_string();
                        let (svc, counts) = (svc.clone(), counts.clone());
                        async move {
                            let resp = hyper::service::Service::call(&svc, req).await;
                            if let Ok(mut c) = counts.lock() {
                                *c.by_method.entry(method).or_default() += 1;
                                if let Ok(r) = &resp {
                                    c.bytes_served += served_bytes(r);
                                }
                            }
                            resp
                        }
                    },
                );
                let conn = http
                    .serve_connection(TokioIo::new(sock), counted)
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        Ok(S3 {
            addr,
            counts,
            root: root.to_path_buf(),
            _rt: rt,
        })
    }

    /// The counts so far, reset to zero.
    pub fn take(&self) -> Counts {
        self.counts
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }

    /// Where the bucket's objects are on disk.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.join(BUCKET)
    }

    /// The repository URL for `prefix` in the bucket.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// The flags every `strata` command needs to reach this server.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--endpoint".into(),
            format!("http://{}", self.addr),
            "--region".into(),
            "us-east-1".into(),
            "--path-style".into(),
            "--allow-http".into(),
        ]
    }

    /// The credentials, as environment variables.
    pub fn env(&self) -> [(&'static str, &'static str); 2] {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ]
    }

    /// Everything a process needs in its environment to reach this server without flags
    /// (a `strata server` attaching an `s3://` repository): endpoint, region, plain http,
    /// credentials (path-style requests are object_store's default).
    pub fn server_env(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = vec![
            ("AWS_ENDPOINT".into(), format!("http://{}", self.addr)),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ALLOW_HTTP".into(), "true".into()),
        ];
        v.extend(self.env().map(|(k, x)| (k.to_string(), x.to_string())));
        v
    }
}

fn served_bytes(r: &hyper::Response<s3s::Body>) -> u64 {
    use hyper::body::Body as _;
    r.headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or_else(|| r.body().size_hint().exact())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_counts_and_resets() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s3 = S3::start(tmp.path()).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(tmp.path().join(BUCKET).join("obj"), vec![7u8; 1234])
            .unwrap_or_else(|e| panic!("{e}"));
        // Unsigned requests are refused: counted, nothing of the object served.
        let http = reqwest::blocking::Client::new();
        let url = format!("http://{}/{BUCKET}/obj", s3.addr);
        let resp = http.get(&url).send().unwrap_or_else(|e| panic!("{e}"));
        assert!(!resp.status().is_success());
        let c = s3.take();
        assert_eq!(c.of("GET"), 1);
        assert!(c.bytes_served < 1234, "{c:?}");
        assert_eq!(s3.take(), Counts::default());
    }
}
