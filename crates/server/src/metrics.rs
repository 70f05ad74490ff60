//! `/metrics`: Prometheus exposition of ingest counters, write latency and engine statistics.
//!
//! Ingest counters are updated by the handlers; engine figures are read from
//! [`strata_engine::Engine::stats`] at scrape time into the same registry, so one encoder
//! renders everything.

use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use strata_engine::EngineStats;

type Labels = [(&'static str, &'static str); 1];

pub struct Metrics {
    registry: Registry,
    points: Family<Labels, Counter>,
    bytes: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    write_seconds: Histogram,
    stale_markers: Counter,
    wal_fsyncs: Counter,
    wal_bytes: Counter,
    merges: Counter,
    segments_dropped: Counter,
    parts: Gauge,
    series_tables_loaded: Gauge,
    series: Gauge,
    memtable_bytes: Gauge,
    last_lsn: Gauge,
    queries_running: Gauge,
    queries_cancelled: Counter,
    query_memory_bytes: Gauge,
    /// Continuous archiving's series (`crate::archive`).
    pub archive: crate::archive::ArchiveMetrics,
}

/// Counts a query as running until dropped.
pub struct Running(Gauge);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("strata");
        let m = Metrics {
            points: Family::default(),
            bytes: Family::default(),
            errors: Family::default(),
            // 50 µs .. ~1.6 s: group commit with fsync lives in the low milliseconds.
            write_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            stale_markers: Counter::default(),
            wal_fsyncs: Counter::default(),
            wal_bytes: Counter::default(),
            merges: Counter::default(),
            segments_dropped: Counter::default(),
            parts: Gauge::default(),
            series_tables_loaded: Gauge::default(),
            series: Gauge::default(),
            memtable_bytes: Gauge::default(),
            last_lsn: Gauge::default(),
            queries_running: Gauge::default(),
            queries_cancelled: Counter::default(),
            query_memory_bytes: Gauge::default(),
            archive: Default::default(),
            registry: Registry::default(),
        };
        registry.register(
            "ingested_points",
            "Points written, by protocol",
            m.points.clone(),
        );
        registry.register(
            "ingested_bytes",
            "Decoded request bytes ingested, by protocol",
            m.bytes.clone(),
        );
        registry.register(
            "http_errors",
            "Requests answered with an error, by endpoint",
            m.errors.clone(),
        );
        registry.register(
            "write_duration_seconds",
            "Time from a batch reaching the engine to it being durable",
            m.write_seconds.clone(),
        );
        registry.register(
            "remote_write_stale_markers",
            "Prometheus stale markers received and dropped",
            m.stale_markers.clone(),
        );
        registry.register("wal_fsyncs", "WAL fsyncs", m.wal_fsyncs.clone());
        registry.register(
            "wal_bytes",
            "Bytes appended to the WAL",
            m.wal_bytes.clone(),
        );
        registry.register("merges", "Part merges completed", m.merges.clone());
        registry.register(
            "segments_dropped",
            "Segments dropped past their group's TTL",
            m.segments_dropped.clone(),
        );
        registry.register("parts", "Immutable parts on disk", m.parts.clone());
        registry.register(
            "part_series_tables_loaded",
            "Parts whose series table a scan has loaded into memory",
            m.series_tables_loaded.clone(),
        );
        registry.register("series", "Series in the index", m.series.clone());
        registry.register(
            "memtable_bytes",
            "Bytes held in memtables",
            m.memtable_bytes.clone(),
        );
        registry.register(
            "last_lsn",
            "Last assigned log sequence number",
            m.last_lsn.clone(),
        );
        registry.register(
            "queries_running",
            "Queries executing now (a query whose client left stops at its next check)",
            m.queries_running.clone(),
        );
        registry.register(
            "queries_cancelled",
            "Queries stopped before their end because the client left or the server shut down",
            m.queries_cancelled.clone(),
        );
        registry.register(
            "query_memory_bytes",
            "Bytes held by running queries, against query_memory_total_bytes",
            m.query_memory_bytes.clone(),
        );
        m.archive.register(&mut registry);
        Metrics { registry, ..m }
    }

    /// The registry, for other modules' families (the scheduler's), before serving.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn ingested(&self, protocol: &'static str, points: u64, bytes: u64, took: Duration) {
        self.points
            .get_or_create(&[("protocol", protocol)])
            .inc_by(points);
        self.bytes
            .get_or_create(&[("protocol", protocol)])
            .inc_by(bytes);
        self.write_seconds.observe(took.as_secs_f64());
    }

    pub fn error(&self, endpoint: &'static str) {
        self.errors.get_or_create(&[("endpoint", endpoint)]).inc();
    }

    /// A query started; it counts as running until the returned guard is dropped.
    pub fn query_started(&self) -> Running {
        self.queries_running.inc();
        Running(self.queries_running.clone())
    }

    /// A query stopped by its cancel token (client gone, server shutting down).
    pub fn query_cancelled(&self) {
        self.queries_cancelled.inc();
    }

    /// Bytes the running queries hold now (read at scrape time).
    pub fn set_query_memory(&self, bytes: usize) {
        self.query_memory_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub fn stale_markers(&self, n: u64) {
        self.stale_markers.inc_by(n);
    }

    /// Render the exposition text, refreshing the engine figures first.
    pub fn render(&self, stats: &EngineStats) -> String {
        self.wal_fsyncs
            .inner()
            .store(stats.wal_fsyncs, Ordering::Relaxed);
        self.wal_bytes
            .inner()
            .store(stats.wal_bytes, Ordering::Relaxed);
        self.merges.inner().store(stats.merges, Ordering::Relaxed);
        self.segments_dropped
            .inner()
            .store(stats.segments_dropped, Ordering::Relaxed);
        self.parts.set(saturating_i64(stats.parts));
        self.series_tables_loaded
            .set(saturating_i64(stats.series_tables_loaded));
        self.series.set(saturating_i64(stats.series));
        self.memtable_bytes
            .set(saturating_i64(stats.memtable_bytes));
        self.last_lsn.set(saturating_i64(stats.last_lsn));
        self.archive.refresh();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_ingest_and_engine_figures() {
        let m = Metrics::new();
        m.ingested("line", 5, 120, Duration::from_millis(2));
        m.error("write");
        let text = m.render(&EngineStats {
            wal_fsyncs: 9,
            parts: 3,
            series: 4,
            series_tables_loaded: 2,
            ..Default::default()
        });
        for want in [
            "strata_ingested_points_total{protocol=\"line\"} 5",
            "strata_ingested_bytes_total{protocol=\"line\"} 120",
            "strata_http_errors_total{endpoint=\"write\"} 1",
            "strata_write_duration_seconds_count 1",
            "strata_wal_fsyncs_total 9",
            "strata_parts 3",
            "strata_series 4",
            "strata_part_series_tables_loaded 2",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}
