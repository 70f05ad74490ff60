//! Strata HTTP server: ingest (line protocol, Prometheus remote write), queries, groups,
//! snapshots and backup jobs, metrics.

pub mod backup_jobs;
