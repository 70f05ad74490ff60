//! The serve loop: accepts connections up to a cap and serves each with HTTP/1.1 under
//! timeouts, so slow, silent or half-open clients cannot hold the server's file descriptors.
//!
//! - **Connection cap** ([`ConnLimits::max_connections`], see [`fds`]): once reached, the loop
//!   stops accepting; new connections wait in the kernel's accept queue and take no
//!   descriptor. Descriptors stay free for the engine's flushes and merges.
//! - **Header timeout**: a connection must deliver a request's headers within
//!   [`ConnLimits::header_timeout`] of being accepted or of its previous response (hyper's
//!   `header_read_timeout`, which runs from the first poll, so a socket that never sends a
//!   byte is closed too). This is also the keep-alive idle time.
//! - **Idle timeout** (see [`watch`]): no request in hand and no byte moving either way for
//!   [`ConnLimits::idle_timeout`] closes the connection (a client that stopped reading its
//!   response). The request *body* has its own deadline (`http::body_deadline`).
//!
//! On shutdown the loop stops accepting, asks every connection to finish its current request
//! and close, and waits for them.

pub mod fds;
mod watch;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch as signal};
use tower::ServiceExt;

use watch::{Activity, Watched};

pub use fds::{FdBudget, FdBudgetError};

/// The limits each connection is served under.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Serve `app` on `listener` until `shutdown` completes, then drain the connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // `stop` tells connections to finish up; every connection holds a `done` receiver, so
    // `done_tx.closed()` completes when the last one is gone.
    let (stop_tx, stop_rx) = signal::channel(());
    let (done_tx, done_rx) = signal::channel(());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let builder = Arc::new(builder);
    let mut at_cap_logged: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if at_cap_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached; new connections wait until one closes"
                    );
                    at_cap_logged = Some(Instant::now());
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let conn = Connection {
            app: app.clone(),
            builder: builder.clone(),
            idle_timeout: limits.idle_timeout,
            stop: stop_rx.clone(),
            _done: done_rx.clone(),
            _permit: permit,
        };
        tokio::spawn(conn.run(stream));
    }
    drop(listener);
    drop(done_rx);
    let _ = stop_tx.send(());
    done_tx.closed().await;
}

async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    // Out of descriptors (or any other trouble): wait for some to free rather than spin.
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(250)).await;
}

struct Connection {
    app: Router,
    builder: Arc<hyper::server::conn::http1::Builder>,
    idle_timeout: Duration,
    stop: signal::Receiver<()>,
    _done: signal::Receiver<()>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        let activity = Activity::new();
        let io = TokioIo::new(Watched::new(stream, activity.clone()));
        let app = self.app.clone();
        let seen = activity.clone();
        let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let in_flight = seen.enter();
            let app = app.clone();
            async move {
                let resp = app.oneshot(req.map(axum::body::Body::new)).await;
                drop(in_flight);
                Ok::<_, Infallible>(match resp {
                    Ok(r) => r,
                    Err(never) => match never {},
                })
            }
        });
        let conn = self.builder.serve_connection(io, svc);
        tokio::pin!(conn);
        let mut draining = false;
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended");
                    }
                    break;
                }
                _ = self.stop.changed(), if !draining => {
                    conn.as_mut().graceful_shutdown();
                    draining = true;
                }
                () = activity.idle_for(self.idle_timeout) => {
                    tracing::debug!("closing an idle connection");
                    break;
                }
            }
        }
    }
}
