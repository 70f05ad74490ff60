//! Strata query layer: the JSON query of `POST /api/v1/query`, planned over the engine's scan
//! API, with aggregation over time buckets and group-by tags.
//!
//! The layer never touches storage directly: it turns a [`Query`] into a [`ScanRequest`]
//! ([`plan`]) and runs it over any [`ScanSource`] — a live [`Engine`], a read-only engine on a
//! stopped server's data directory, or (later) a backup snapshot — so every front end answers a
//! query the same way.

mod aggregate;
mod error;
pub mod influxql;
mod parse;
mod result;

use strata_engine::{Engine, ScanRequest, SeriesData};

pub use aggregate::AggFn;
pub use error::QueryError;
pub use parse::{Agg, Order, Query};
pub use result::{QueryResult, ResultSeries};

/// Anything that can answer a [`ScanRequest`]: the engine, or a closure (tests, backups).
pub trait ScanSource {
    fn scan(&self, req: &ScanRequest) -> Result<Vec<SeriesData>, strata_engine::Error>;
}

impl ScanSource for Engine {
    fn scan(&self, req: &ScanRequest) -> Result<Vec<SeriesData>, strata_engine::Error> {
        Engine::scan(self, req)
    }
}

impl<F> ScanSource for F
where
    F: Fn(&ScanRequest) -> Result<Vec<SeriesData>, strata_engine::Error>,
{
    fn scan(&self, req: &ScanRequest) -> Result<Vec<SeriesData>, strata_engine::Error> {
        self(req)
    }
}

/// The scan a query needs: one measure of one group over `[from, to)`, with the tag filters
/// pushed down to the series index and only the requested fields read.
pub fn plan(q: &Query) -> ScanRequest {
    ScanRequest {
        group: q.group.clone(),
        measure: q.measure.clone(),
        from: q.from,
        to: q.to,
        matchers: q.matchers.clone(),
        fields: q.fields.clone(),
    }
}

/// Parse a JSON query and run it.
pub fn run_json(source: &dyn ScanSource, json: &[u8]) -> Result<QueryResult, QueryError> {
    let q = Query::from_json(json)?;
    execute(source, &q)
}

/// Run a parsed query over `source`.
pub fn execute(source: &dyn ScanSource, q: &Query) -> Result<QueryResult, QueryError> {
    let data = source.scan(&plan(q)).map_err(QueryError::from_engine)?;
    result::shape(q, data)
}
