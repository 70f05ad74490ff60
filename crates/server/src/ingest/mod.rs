//! Ingest protocols: InfluxDB line protocol and Prometheus remote write, decoded into engine
//! [`strata_engine::Point`]s. Pure functions, no I/O: the HTTP handlers own bodies and limits.

pub mod body;
pub mod line_protocol;
pub mod remote_write;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod proptests;
