//! Continuous WAL archiving in the server: the `[archive]` configuration, the archiver task
//! (`strata_backup::archive::ship`, one step every `interval`) and its `/metrics` series.
//!
//! ```toml
//! [archive]
//! enabled = true          # also --archive or STRATA_ARCHIVE=true
//! max_pending = "1GiB"    # WAL kept for the archive at most (STRATA_ARCHIVE_MAX_PENDING)
//! interval = "200ms"      # how often the archiver ships (STRATA_ARCHIVE_INTERVAL)
//! ```
//!
//! The archive goes to the server's repository (`--repo` / `[repository]`: URL, password,
//! endpoint, credentials), the same as backup jobs.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use strata_backup::archive::ship::{ArchiveStats, Shipper, Step};
use strata_backup::settings::RepoSettings;
use strata_engine::Engine;

use crate::config::ConfigError;

pub const DEFAULT_MAX_PENDING: &str = "1GiB";
pub const DEFAULT_INTERVAL: &str = "200ms";

/// The `[archive]` table (and its flags and env variables) as one configuration layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveLayer {
    pub enabled: Option<bool>,
    pub max_pending: Option<String>,
    pub interval: Option<String>,
}

/// The effective archive settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveSettings {
    pub enabled: bool,
    pub max_pending_bytes: u64,
    pub interval: Duration,
}

impl ArchiveLayer {
    /// `STRATA_ARCHIVE`, `STRATA_ARCHIVE_MAX_PENDING`, `STRATA_ARCHIVE_INTERVAL`.
    pub fn from_env(
        get: &impl Fn(&str) -> Option<String>,
    ) -> Result<Option<ArchiveLayer>, ConfigError> {
        let enabled = match get("STRATA_ARCHIVE") {
            None => None,
            Some(v) => Some(match v.trim() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" | "" => false,
                _ => {
                    return Err(ConfigError::Env {
                        var: "STRATA_ARCHIVE",
                        reason: format!("'{v}' is not true or false"),
                    });
                }
            }),
        };
        let l = ArchiveLayer {
            enabled,
            max_pending: get("STRATA_ARCHIVE_MAX_PENDING"),
            interval: get("STRATA_ARCHIVE_INTERVAL"),
        };
        Ok((l != ArchiveLayer::default()).then_some(l))
    }

    pub fn or(self, lower: ArchiveLayer) -> ArchiveLayer {
        ArchiveLayer {
            enabled: self.enabled.or(lower.enabled),
            max_pending: self.max_pending.or(lower.max_pending),
            interval: self.interval.or(lower.interval),
        }
    }

    pub fn finish(self) -> Result<ArchiveSettings, ConfigError> {
        let mp = self
            .max_pending
            .unwrap_or_else(|| DEFAULT_MAX_PENDING.to_string());
        let max_pending_bytes = strata_backup::store::parse_rate(&mp)
            .ok()
            .filter(|b| *b > 0)
            .ok_or_else(|| {
                ConfigError::Archive(format!(
                    "archive.max_pending '{mp}': expected a size such as 1GiB or 512MiB"
                ))
            })?;
        let iv = self
            .interval
            .unwrap_or_else(|| DEFAULT_INTERVAL.to_string());
        let interval = strata_engine::duration::parse(&iv)
            .ok()
            .filter(|d| *d >= Duration::from_millis(10) && *d <= Duration::from_secs(1))
            .ok_or_else(|| {
                ConfigError::Archive(format!(
                    "archive.interval '{iv}': expected a duration from 10ms to 1s (the recovery point objective is 1 s)"
                ))
            })?;
        Ok(ArchiveSettings {
            enabled: self.enabled.unwrap_or(false),
            max_pending_bytes,
            interval,
        })
    }
}

/// Merge two optional layers (higher wins per key).
pub fn or_layers(hi: Option<ArchiveLayer>, lo: Option<ArchiveLayer>) -> Option<ArchiveLayer> {
    match (hi, lo) {
        (Some(h), Some(l)) => Some(h.or(l)),
        (h, l) => h.or(l),
    }
}

/// `/metrics` series of the archiver (all zero while archiving is off).
#[derive(Default)]
pub struct ArchiveMetrics {
    stats: std::sync::OnceLock<Arc<ArchiveStats>>,
    lag: Gauge<f64, std::sync::atomic::AtomicU64>,
    bytes: Counter,
    objects: Counter,
    failures: Counter,
    gaps: Counter,
    window_start: Gauge,
    window_end: Gauge,
    archived_lsn: Gauge,
}

impl ArchiveMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "archive_lag_seconds",
            "Age of the oldest acknowledged write not yet archived (0 when caught up)",
            self.lag.clone(),
        );
        r.register(
            "archive_shipped_bytes",
            "Bytes of archive objects written",
            self.bytes.clone(),
        );
        r.register(
            "archive_shipped_objects",
            "Archive objects written",
            self.objects.clone(),
        );
        r.register(
            "archive_failures",
            "Archiver steps that failed (retried)",
            self.failures.clone(),
        );
        r.register(
            "archive_gaps",
            "Times WAL was deleted before it was archived (the window breaks; a new chain starts)",
            self.gaps.clone(),
        );
        r.register(
            "archive_window_start_seconds",
            "Start of the current point-in-time window (Unix seconds; 0: none)",
            self.window_start.clone(),
        );
        r.register(
            "archive_window_end_seconds",
            "Last archived commit time (Unix seconds; 0: none)",
            self.window_end.clone(),
        );
        r.register(
            "archive_lsn",
            "Last archived log sequence number",
            self.archived_lsn.clone(),
        );
    }

    pub fn attach(&self, stats: Arc<ArchiveStats>) {
        let _ = self.stats.set(stats);
    }

    /// Copy the archiver's figures into the series (at scrape time).
    pub fn refresh(&self) {
        let Some(s) = self.stats.get() else {
            return;
        };
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        self.lag.set(s.lag_seconds(now));
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        self.bytes
            .inner()
            .store(load(&s.bytes_shipped), Ordering::Relaxed);
        self.objects
            .inner()
            .store(load(&s.objects_shipped), Ordering::Relaxed);
        self.failures
            .inner()
            .store(load(&s.failures), Ordering::Relaxed);
        self.gaps.inner().store(load(&s.gaps), Ordering::Relaxed);
        self.window_start
            .set(s.window_start_ns.load(Ordering::Relaxed) / 1_000_000_000);
        self.window_end
            .set(s.window_end_ns.load(Ordering::Relaxed) / 1_000_000_000);
        self.archived_lsn
            .set(i64::try_from(load(&s.archived_lsn)).unwrap_or(i64::MAX));
    }
}

/// Runs the archiver until the runtime shuts down: opens the repository (retrying), then one
/// step every `interval`; a failed step is logged and retried after a back-off (at most 5 s).
pub async fn run(
    engine: Arc<Engine>,
    repo: RepoSettings,
    settings: ArchiveSettings,
    stats: Arc<ArchiveStats>,
) {
    let mut backoff = settings.interval;
    let repo = loop {
        match repo.open().await {
            Ok(r) => break Arc::new(r),
            Err(e) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, repository = %repo.url, "archiver cannot open the repository; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    tracing::info!(repository = %repo.url(), "archiving WAL");
    let mut shipper = Shipper::new(engine, repo, stats);
    backoff = settings.interval;
    loop {
        match shipper.step().await {
            Ok(Step::Shipped { .. }) | Ok(Step::NewChain { .. }) => {
                backoff = settings.interval;
                // More may be waiting: go on at once (a backlog drains at full speed).
                tokio::task::yield_now().await;
            }
            Ok(Step::Idle) => {
                backoff = settings.interval;
                tokio::time::sleep(settings.interval).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "archiver step failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
