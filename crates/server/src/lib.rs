//! Strata HTTP server: ingest (line protocol, Prometheus remote write), queries, groups,
//! snapshots and backup jobs, metrics.
//!
//! The server owns a tokio runtime of its own; the engine below it is synchronous and is
//! called from the blocking pool. [`run`] opens the engine, serves until SIGINT/SIGTERM, lets
//! in-flight requests finish, then flushes and closes the engine.

pub mod archive;
pub mod attach;
pub mod backup_jobs;
pub mod config;
pub mod drills;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod metrics;
pub mod remote_read;
pub mod repo_api;
pub mod restores;
pub mod scheduler;
pub mod serve;
pub mod ui;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use strata_engine::{Engine, EngineOptions};

pub use config::{Config, ConfigError, ConfigLayer};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open data directory: {0}")]
    Engine(#[from] strata_engine::Error),
    /// The final flush or close failed; acknowledged writes are still in the WAL.
    #[error(
        "cannot flush the data directory at shutdown ({0}); every acknowledged write is in the write-ahead log and is replayed at the next start"
    )]
    Close(#[source] strata_engine::Error),
    #[error(transparent)]
    Descriptors(#[from] serve::FdBudgetError),
    #[error(transparent)]
    Jobs(#[from] jobs::HistoryError),
    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let what = what.into();
    move |source| ServerError::Io { what, source }
}

/// Run the server until a shutdown signal. Prints `listening on http://ADDR` on stdout once
/// the socket is bound (with the real port when the configured one is 0).
pub fn run(config: Config) -> Result<(), ServerError> {
    tracing::info!(config = ?config.redacted(), "effective configuration");
    let addr = config.listen_addr()?;
    let budget = serve::fds::raise_and_plan(config.max_connections)?;
    tracing::info!(
        open_file_limit = budget.limit,
        raised_from = ?budget.raised_from,
        reserved_for_engine = budget.reserved,
        max_connections = budget.max_connections,
        "file descriptors"
    );
    let limits = serve::ConnLimits {
        max_connections: budget.max_connections,
        header_timeout: config.header_timeout()?,
        idle_timeout: config.idle_timeout()?,
    };
    // Start-up goes through the engine alone: its open finishes a restore swap a crash
    // interrupted before it looks inside the directory (docs/format/swap-journal.md).
    let mut opts = EngineOptions::new(&config.data_dir);
    opts.fsync = config.fsync_policy()?;
    opts.idle_flush = config.idle_flush()?;
    opts.max_fields_per_point = config.max_fields_per_point;
    opts.max_fields_per_measure = config.max_fields_per_measure;
    if config.archive.enabled {
        opts.archive_max_pending = Some(config.archive.max_pending_bytes);
    }
    let engine = Arc::new(Engine::open(opts)?);
    tracing::info!(data_dir = %config.data_dir.display(), node_id = engine.node_id(), "engine open");
    // Every open part holds a descriptor for its data file (so a merge can delete it under a
    // reader); they come out of the engine's reserve.
    let parts = engine.stats().parts;
    if parts.saturating_mul(2) > budget.reserved {
        tracing::warn!(
            parts,
            reserved_for_engine = budget.reserved,
            open_file_limit = budget.limit,
            "the engine holds one file descriptor per part and its parts use much of the descriptors kept for it; raise the open-file limit (ulimit -n, LimitNOFILE=) or flushes will be postponed for want of descriptors"
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strata-http")
        .build()
        .map_err(io("start the HTTP runtime"))?;
    let mut server_metrics = metrics::Metrics::new();
    let schedule_metrics = scheduler::metrics::ScheduleMetrics::default();
    schedule_metrics.register(server_metrics.registry_mut());
    let metrics = Arc::new(server_metrics);
    let archive_stats = config
        .archive
        .enabled
        .then(|| Arc::new(strata_backup::archive::ship::ArchiveStats::default()));
    if let Some(stats) = archive_stats.clone() {
        metrics.archive.attach(stats.clone());
        runtime.spawn(archive::run(
            engine.clone(),
            config.repository.clone(),
            config.archive.clone(),
            stats,
        ));
    }
    let state = http::AppState {
        engine: engine.clone(),
        metrics,
        max_body: config.max_body_bytes,
        body_timeout: config.body_timeout()?,
        remote_read: config.remote_read_limits(),
        max_fields: config.max_fields_per_point,
        queries: http::QueryLimits::new(config.query_memory_bytes, config.query_memory_total_bytes),
        attachments: Arc::new(attach::Attachments::default()),
    };
    attach::mount_configured(&state.attachments, &engine, &config);
    let stop_queries = state.queries.shutdown.clone();
    let jobs = jobs::Jobs::open(&config.jobs_history)?;
    let backups = backup_jobs::Backups::new(
        engine.clone(),
        jobs.clone(),
        Some(config.repository.clone()),
    );
    // Schedules are checked against the open engine and their repositories before serving.
    let checked = scheduler::config::check_all(&config.schedules).map_err(ConfigError::from)?;
    let schedules = runtime
        .block_on(scheduler::Scheduler::prepare(
            checked,
            backups.clone(),
            &config.repository,
            schedule_metrics,
        ))
        .map_err(ConfigError::from)?;
    let backup_routes = backup_jobs::routes(backups.clone())
        .merge(jobs::http::routes(jobs))
        .merge(scheduler::http::routes(schedules.clone()))
        .merge(drills::routes(backups.clone()))
        .merge(restores::routes(backups.clone()))
        .merge(attach::http::routes(attach::http::AttachState {
            engine: engine.clone(),
            attachments: state.attachments.clone(),
            repo: config.repository.clone(),
        }));
    let backup_routes = backup_routes.merge(repo_api::routes(repo_api::RepoApi {
        backups: backups.clone(),
        schedules: schedules.clone(),
        archive: archive_stats,
    }));
    // The UI's pages hold no data (their script calls the API above, token and all), so
    // they are served outside the token check: see `ui`.
    // Merging drops the API router's layered fallback: unknown routes get the API's JSON 404
    // again (found by backup_seam's every-error-is-JSON test).
    let app = http::router(state, config.auth_token.clone(), backup_routes)
        .merge(ui::routes())
        .fallback(|| async {
            http::error::ApiError::new(axum::http::StatusCode::NOT_FOUND, "not found")
        });
    let served = runtime.block_on(async move {
        schedules.spawn();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(io(format!("listen on {addr}")))?;
        let bound = listener
            .local_addr()
            .map_err(io("read the bound address"))?;
        // Arm the signal handlers before announcing the address: a SIGTERM sent as soon as
        // the line is read must shut down gracefully, not kill by the default action.
        let signal = shutdown_signal()?;
        // Running queries stop at shutdown instead of holding the graceful drain.
        let shutdown = async move {
            signal.await;
            stop_queries.cancel();
        };
        tracing::info!(%bound, "listening");
        // Tests and scripts read the bound address from this line.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "strata server listening on http://{bound}");
        let _ = out.flush();
        drop(out);
        serve::serve(listener, app, limits, shutdown).await;
        Ok::<(), ServerError>(())
    });
    // In-flight requests have completed; give detached tasks (backup jobs) a moment, then
    // drop the runtime so their engine handles go away before closing.
    runtime.shutdown_timeout(Duration::from_secs(10));
    served?;
    close_engine(engine)
}

fn close_engine(engine: Arc<Engine>) -> Result<(), ServerError> {
    match Arc::try_unwrap(engine) {
        Ok(engine) => engine.close().map_err(ServerError::Close)?,
        Err(shared) => {
            // Something still holds the engine (a stuck task): flush at least, so every
            // acknowledged write is in parts and the WAL is synced.
            tracing::warn!("engine still shared at shutdown; flushing without closing");
            shared.flush().map_err(ServerError::Close)?;
        }
    }
    tracing::info!("engine closed, bye");
    Ok(())
}

/// Installs the SIGINT/SIGTERM handlers now (so no signal is missed from here on) and returns
/// the future that completes on the first of them.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, ServerError> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io("listen for SIGTERM"))?;
    #[cfg(unix)]
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(io("listen for SIGINT"))?;
    Ok(async move {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
                _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            if let Err(e) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %e, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_close_says_what_failed() {
        // Issue 18: shutting down on a full disk printed "cannot open data directory".
        let enospc = std::io::Error::from_raw_os_error(28);
        let e = ServerError::Close(strata_engine::Error::io("/data/wal", enospc));
        let msg = e.to_string();
        assert!(
            msg.starts_with("cannot flush the data directory at shutdown"),
            "{msg}"
        );
        assert!(msg.contains("write-ahead log"), "{msg}");
        assert!(!msg.contains("open"), "{msg}");
    }
}
