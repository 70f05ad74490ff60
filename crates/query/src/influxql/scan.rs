//! How InfluxQL statements read the engine: one series at a time, under the query's [`Limits`].
//!
//! A `SELECT` keeps the series it scanned (its OR conditions and `GROUP BY *` need them all
//! before shaping), so what it keeps is charged to the query's memory account, per query and
//! against the budget shared by every running query, like a JSON query; a `SHOW` keeps only
//! tag sets. Both stop at the next series once the query's cancel token trips (the client went
//! away, the server is shutting down).

use strata_engine::{ScanRequest, ScanSink, SeriesData};

use super::Database;
use super::error::ExecError;
use crate::budget::{Account, Limits};
use crate::{QueryError, result};

/// The series of `req` that `keep` accepts, charged to a fresh account under `limits`. The
/// account is returned with them: it holds their bytes until dropped.
pub(super) fn collect(
    db: &dyn Database,
    req: &ScanRequest,
    limits: &Limits,
    keep: &dyn Fn(&SeriesData) -> bool,
) -> Result<(Vec<SeriesData>, Account), ExecError> {
    let mut acct = Account::new(limits);
    let mut sink = Collect {
        keep,
        acct: &mut acct,
        out: Vec::new(),
        failed: None,
    };
    db.scan_each(req, &mut sink)
        .map_err(|e| ExecError::Query(QueryError::from_engine(e)))?;
    let Collect { out, failed, .. } = sink;
    finish(failed, &acct)?;
    Ok((out, acct))
}

/// Calls `each` with the tag set of every series of `req`, one series in memory at a time.
pub(super) fn each_series_tags(
    db: &dyn Database,
    req: &ScanRequest,
    limits: &Limits,
    each: &mut dyn FnMut(Vec<(String, String)>),
) -> Result<(), ExecError> {
    let acct = Account::new(limits);
    let mut sink = Tags { acct: &acct, each };
    db.scan_each(req, &mut sink)
        .map_err(|e| ExecError::Query(QueryError::from_engine(e)))?;
    finish(None, &acct)
}

fn finish(failed: Option<QueryError>, acct: &Account) -> Result<(), ExecError> {
    if let Some(e) = failed {
        return Err(ExecError::Query(e));
    }
    if acct.cancelled() {
        return Err(ExecError::Query(QueryError::Cancelled));
    }
    Ok(())
}

struct Collect<'a> {
    keep: &'a dyn Fn(&SeriesData) -> bool,
    acct: &'a mut Account,
    out: Vec<SeriesData>,
    failed: Option<QueryError>,
}

impl ScanSink for Collect<'_> {
    fn keep_going(&mut self) -> bool {
        self.failed.is_none() && !self.acct.cancelled()
    }

    fn series(&mut self, s: SeriesData) -> bool {
        if !(self.keep)(&s) {
            return true;
        }
        match self.acct.charge(result::series_bytes(&s)) {
            Ok(()) => {
                self.out.push(s);
                true
            }
            Err(e) => {
                self.failed = Some(e);
                false
            }
        }
    }
}

struct Tags<'a> {
    acct: &'a Account,
    each: &'a mut dyn FnMut(Vec<(String, String)>),
}

impl ScanSink for Tags<'_> {
    fn keep_going(&mut self) -> bool {
        !self.acct.cancelled()
    }

    fn series(&mut self, s: SeriesData) -> bool {
        (self.each)(s.tags);
        true
    }
}
