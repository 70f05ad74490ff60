//! The read API used by the query layer.

use crate::model::Timestamp;

/// A filter on one tag of a series. A series without the tag has the empty value.
#[derive(Debug, Clone)]
pub enum TagMatcher {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Regex(String, regex::Regex),
    NotRegex(String, regex::Regex),
}

/// Scan one measure of one group over `[from, to)`.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    pub group: String,
    pub measure: String,
    pub from: Timestamp,
    pub to: Timestamp,
    /// All must match (AND).
    pub matchers: Vec<TagMatcher>,
    /// Fields to return; `None` = every field of the measure.
    pub fields: Option<Vec<String>>,
}

/// A column of one series, aligned with [`SeriesData::timestamps`]; `None` where the point had
/// no value for the field.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    F64(Vec<Option<f64>>),
    I64(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Str(Vec<Option<String>>),
}

/// All points of one series in the scanned range, sorted by time, one row per timestamp
/// (a later write to the same series and timestamp replaces the earlier one field by field).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesData {
    /// Sorted by key.
    pub tags: Vec<(String, String)>,
    pub timestamps: Vec<Timestamp>,
    /// (field name, column), in the order requested (or sorted by name when all fields).
    pub columns: Vec<(String, Column)>,
}

/// Receives the series of [`crate::Engine::scan_each`] one at a time, in series-key order, and
/// can stop the scan (a query that hit its limit or memory budget, or whose client left).
pub trait ScanSink {
    /// Whether to go on; asked between series and between the parts of a series.
    fn keep_going(&mut self) -> bool {
        true
    }
    /// One series with its rows in the range; `false` stops the scan.
    fn series(&mut self, s: SeriesData) -> bool;
}

impl<F: FnMut(SeriesData) -> bool> ScanSink for F {
    fn series(&mut self, s: SeriesData) -> bool {
        self(s)
    }
}

/// How the query layer will aggregate a scan, so the engine may answer whole blocks from
/// their summaries instead of decoding them ([`crate::Engine::scan_summarized`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryRequest {
    /// Bucket width: a point at `ts` falls in the bucket starting at
    /// `ts - ts.rem_euclid(every)`; `None` is one bucket over the whole range.
    pub every: Option<i64>,
    /// The aggregation needs only the first (or last) value of each field per bucket: a block
    /// that straddles the range's end (or start) may come as a summary too, each field's
    /// summary kept only when its first (last) value lies inside the range. Its other
    /// figures (count, sum, min, max) then cover points outside the range: use only
    /// `first` (`last`) of such a request's summaries.
    pub only: Option<Only>,
}

/// See [`SummaryRequest::only`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    First,
    Last,
}

impl SummaryRequest {
    /// The bucket of `ts` (`i64::MIN` when its start does not fit, as the query layer does).
    pub fn bucket(&self, ts: Timestamp) -> i64 {
        match self.every {
            Some(every) => ts.checked_sub(ts.rem_euclid(every)).unwrap_or(i64::MIN),
            None => 0,
        }
    }
}

/// A block of one series answered from its summary: no other source of the series has a
/// point in `[min_ts, max_ts]`, the block lies inside the scanned range and inside one bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSummary {
    pub min_ts: Timestamp,
    pub max_ts: Timestamp,
    /// Aligned with [`SeriesData::columns`]: `None` where the block has no value of the field.
    pub fields: Vec<Option<FieldAgg>>,
}

/// The values of one field in one summarized block.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldAgg {
    /// Values present.
    pub count: u64,
    pub summary: crate::part::summary::FieldSummary,
}

/// Receives the series of [`crate::Engine::scan_summarized`]: each series' decoded points and
/// its blocks answered from summaries (sorted by time, disjoint from each other and from the
/// points' timestamps). A series is given when it has at least one point or block.
pub trait SummarySink {
    fn keep_going(&mut self) -> bool {
        true
    }
    fn series(&mut self, s: SeriesData, blocks: Vec<BlockSummary>) -> bool;
}
