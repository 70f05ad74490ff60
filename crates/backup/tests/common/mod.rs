//! Test helpers: an in-process S3 server (s3s + s3s-fs on 127.0.0.1) and store builders.
#![allow(dead_code, clippy::unwrap_used)]

pub mod engine;

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use object_store::BackoffConfig;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use strata_backup::store::{self, DynStore, StoreOptions};

pub struct S3Server {
    pub dir: tempfile::TempDir,
    pub addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub const ACCESS: &str = "test-access-key";
pub const SECRET: &str = "test-secret-key";
pub const BUCKET: &str = "backups";

pub async fn start_s3() -> S3Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(BUCKET)).unwrap();
    let mut b = S3ServiceBuilder::new(s3s_fs::FileSystem::new(dir.path()).unwrap());
    b.set_auth(SimpleAuth::from_single(ACCESS, SECRET));
    let service = b.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let conn = http
                .serve_connection(TokioIo::new(sock), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    S3Server { dir, addr, task }
}

pub fn fast_options() -> StoreOptions {
    StoreOptions {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            base: 2.0,
        },
        ..Default::default()
    }
}

/// An S3 store through the same URL parsing the CLI uses.
pub fn s3_store(server: &S3Server, prefix: &str) -> DynStore {
    store::open(&s3_url(prefix), &s3_options(server), false).unwrap()
}

pub fn s3_url(prefix: &str) -> String {
    format!("s3://{BUCKET}/{prefix}")
}

pub fn s3_options(server: &S3Server) -> StoreOptions {
    let mut o = fast_options();
    o.endpoint = Some(format!("http://{}", server.addr));
    o.region = Some("us-east-1".into());
    o.access_key_id = Some(ACCESS.into());
    o.secret_access_key = Some(SECRET.into());
    o.path_style = true;
    o.allow_http = true;
    o
}

pub fn memory_store() -> DynStore {
    store::layered(
        Arc::new(object_store::memory::InMemory::new()),
        &fast_options(),
    )
}

pub fn local_store(dir: &std::path::Path) -> DynStore {
    store::open(dir.to_str().unwrap(), &fast_options(), true).unwrap()
}
