//! Strata query layer: the JSON query of `POST /api/v1/query`, planned over the engine's scan
//! API, with aggregation over time buckets and group-by tags.
//!
//! The layer never touches storage directly: it turns a [`Query`] into a [`ScanRequest`]
//! ([`plan`]) and runs it over any [`ScanSource`] — a live [`Engine`], a read-only engine on a
//! stopped server's data directory, or (later) a backup snapshot — so every front end answers a
//! query the same way.

mod aggregate;
mod budget;
mod error;
pub mod influxql;
mod parse;
mod result;

use strata_engine::{
    BlockSummary, Engine, Only, ScanRequest, ScanSink, SeriesData, SummaryRequest, SummarySink,
};

pub use aggregate::AggFn;
pub use budget::{
    Account, CancelOnDrop, CancelToken, DEFAULT_QUERY_BYTES, DEFAULT_TOTAL_BYTES, Limits,
    SharedBudget,
};
pub use error::QueryError;
pub use parse::{Agg, MAX_EVERY_NS, Order, Query};
pub use result::{QueryResult, ResultSeries};

/// Anything that can answer a [`ScanRequest`]: the engine, or a closure (tests, backups).
pub trait ScanSource {
    fn scan(&self, req: &ScanRequest) -> Result<Vec<SeriesData>, strata_engine::Error>;

    /// Feed the series to `sink` one at a time. The default scans everything first; the
    /// engine streams (one series' data in memory at a time) and stops when the sink says.
    fn scan_each(
        &self,
        req: &ScanRequest,
        sink: &mut dyn ScanSink,
    ) -> Result<(), strata_engine::Error> {
        for s in self.scan(req)? {
            if !sink.keep_going() || !sink.series(s) {
                break;
            }
        }
        Ok(())
    }

    /// Feed the series of an aggregation to `sink`, with whole blocks answered from their
    /// summaries where the source can. The default gives every point and no summary.
    fn scan_summarized(
        &self,
        req: &ScanRequest,
        _summaries: SummaryRequest,
        sink: &mut dyn SummarySink,
    ) -> Result<(), strata_engine::Error> {
        self.scan_each(req, &mut PointsOnly(sink))
    }
}

/// A [`SummarySink`] fed by a plain scan.
struct PointsOnly<'a>(&'a mut dyn SummarySink);

impl ScanSink for PointsOnly<'_> {
    fn keep_going(&mut self) -> bool {
        self.0.keep_going()
    }
    fn series(&mut self, s: SeriesData) -> bool {
        self.0.series(s, Vec::new())
    }
}

impl ScanSource for Engine {
    fn scan(&self, req: &ScanRequest) -> Result<Vec<SeriesData>, strata_engine::Error> {
        Engine::scan(self, req)
    }

    fn scan_each(
        &self,
        req: &ScanRequest,
        sink: &mut dyn ScanSink,
    ) -> Result<(), strata_engine::Error> {
        Engine::scan_each(self, req, sink)
    }

    fn scan_summarized(
        &self,
        req: &ScanRequest,
        summaries: SummaryRequest,
        sink: &mut dyn SummarySink,
    ) -> Result<(), strata_engine::Error> {
        Engine::scan_summarized(self, req, summaries, sink)
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

/// Parse a JSON query and run it (default [`Limits`]).
pub fn run_json(source: &dyn ScanSource, json: &[u8]) -> Result<QueryResult, QueryError> {
    let q = Query::from_json(json)?;
    execute(source, &q)
}

/// Run a parsed query over `source` (default [`Limits`]).
pub fn execute(source: &dyn ScanSource, q: &Query) -> Result<QueryResult, QueryError> {
    execute_with(source, q, &Limits::default()).map(|(r, _)| r)
}

/// Run a parsed query under `limits`. The scan streams series into the answer, so memory is
/// what the answer keeps (bounded by `limit` and aggregation) plus one series; the returned
/// [`Account`] still holds the answer's bytes against the shared budget until dropped (keep
/// it while serialising).
pub fn execute_with(
    source: &dyn ScanSource,
    q: &Query,
    limits: &Limits,
) -> Result<(QueryResult, Account), QueryError> {
    let mut acct = Account::new(limits);
    let mut shaper = result::Shaper::new(q);
    let mut failed: Option<QueryError> = None;
    let mut sink = Folder {
        shaper: &mut shaper,
        acct: &mut acct,
        failed: &mut failed,
    };
    match q.agg {
        Some(agg) => {
            let only = match agg.func {
                AggFn::First => Some(Only::First),
                AggFn::Last => Some(Only::Last),
                _ => None,
            };
            let summaries = SummaryRequest {
                every: agg.every,
                only,
            };
            source.scan_summarized(&plan(q), summaries, &mut sink)
        }
        None => source.scan_each(&plan(q), &mut PointsOnly(&mut sink)),
    }
    .map_err(QueryError::from_engine)?;
    if let Some(e) = failed {
        return Err(e);
    }
    if acct.cancelled() {
        return Err(QueryError::Cancelled);
    }
    Ok((shaper.finish(), acct))
}

/// The scan sink of a query: folds each series, stops at the first error or cancellation.
struct Folder<'a, 'q> {
    shaper: &'a mut result::Shaper<'q>,
    acct: &'a mut Account,
    failed: &'a mut Option<QueryError>,
}

impl SummarySink for Folder<'_, '_> {
    fn keep_going(&mut self) -> bool {
        self.failed.is_none() && !self.acct.cancelled()
    }

    fn series(&mut self, s: SeriesData, blocks: Vec<BlockSummary>) -> bool {
        // The series itself counts while it is folded.
        let held = result::series_bytes(&s) + blocks.len() * result::BLOCK_SUMMARY_BYTES;
        let res = self.acct.charge(held).and_then(|()| {
            let r = self.shaper.fold_with(&s, &blocks, self.acct);
            self.acct.release(held);
            r
        });
        match res {
            Ok(()) => true,
            Err(e) => {
                *self.failed = Some(e);
                false
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::cell::Cell;

    use strata_engine::Column;

    use super::*;

    /// A source of `n` one-point series that counts how many it produced and cancels
    /// `token` after producing `cancel_after` of them.
    struct Counting {
        n: usize,
        produced: Cell<usize>,
        cancel_after: usize,
        token: CancelToken,
    }

    impl ScanSource for Counting {
        fn scan(&self, _: &ScanRequest) -> Result<Vec<SeriesData>, strata_engine::Error> {
            unreachable!("queries stream")
        }

        fn scan_each(
            &self,
            _: &ScanRequest,
            sink: &mut dyn ScanSink,
        ) -> Result<(), strata_engine::Error> {
            for i in 0..self.n {
                if !sink.keep_going() {
                    break;
                }
                self.produced.set(self.produced.get() + 1);
                if self.produced.get() == self.cancel_after {
                    self.token.cancel();
                }
                let s = SeriesData {
                    tags: vec![("host".into(), format!("h{i:06}"))],
                    timestamps: vec![i as i64],
                    columns: vec![("f".into(), Column::F64(vec![Some(1.0)]))],
                };
                if !sink.series(s) {
                    break;
                }
            }
            Ok(())
        }
    }

    fn counting(n: usize, cancel_after: usize) -> Counting {
        Counting {
            n,
            produced: Cell::new(0),
            cancel_after,
            token: CancelToken::new(),
        }
    }

    fn q(json: &str) -> Query {
        Query::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn a_cancelled_query_stops_scanning_at_the_next_series() {
        let src = counting(10_000, 3);
        let limits = Limits {
            cancel: vec![src.token.clone()],
            ..Limits::default()
        };
        let err = execute_with(&src, &q(r#"{"group":"g","measure":"m"}"#), &limits).unwrap_err();
        assert!(matches!(err, QueryError::Cancelled), "{err}");
        assert_eq!(src.produced.get(), 3);
    }

    #[test]
    fn the_budget_stops_a_raw_scan_early_and_limit_or_aggregation_keep_it_small() {
        let src = counting(100_000, usize::MAX);
        let limits = Limits {
            query_bytes: 100_000,
            ..Limits::default()
        };
        let err = execute_with(&src, &q(r#"{"group":"g","measure":"m"}"#), &limits).unwrap_err();
        assert!(
            matches!(err, QueryError::TooLarge { limit: 100_000 }),
            "{err}"
        );
        assert!(src.produced.get() < 10_000, "{}", src.produced.get());
        // Merged into one series by group_by, limited to 5 rows: fits, whatever the scan size.
        let src = counting(100_000, usize::MAX);
        let (r, acct) = execute_with(
            &src,
            &q(r#"{"group":"g","measure":"m","group_by":["dc"],"limit":5,"order":"desc"}"#),
            &limits,
        )
        .unwrap();
        assert!(acct.held() <= 100_000);
        let times: Vec<i64> = r.series[0]
            .values
            .iter()
            .map(|v| v[0].as_i64().unwrap())
            .collect();
        assert_eq!(times, vec![99_999, 99_998, 99_997, 99_996, 99_995]);
        let src = counting(100_000, usize::MAX);
        let (r, _) = execute_with(
            &src,
            &q(r#"{"group":"g","measure":"m","agg":{"fn":"count","every":10},"limit":2}"#),
            &limits,
        )
        .unwrap();
        assert_eq!(
            r.series[0].values,
            vec![
                vec![serde_json::json!(0), serde_json::json!(10)],
                vec![serde_json::json!(10), serde_json::json!(10)]
            ]
        );
    }

    #[test]
    fn the_shared_budget_is_given_back_when_the_answer_is_dropped() {
        let shared = SharedBudget::new(1 << 20);
        let limits = Limits {
            shared: Some(shared.clone()),
            ..Limits::default()
        };
        let src = counting(100, usize::MAX);
        let (r, acct) = execute_with(&src, &q(r#"{"group":"g","measure":"m"}"#), &limits).unwrap();
        assert_eq!(r.series.len(), 100);
        assert!(shared.used() > 0);
        drop(acct);
        assert_eq!(shared.used(), 0);
    }
}
