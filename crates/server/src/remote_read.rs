//! Prometheus remote read: `prometheus.ReadRequest` in, sampled `ReadResponse` out.
//!
//! Mapping (remote write's, in reverse): every numeric field `F` of a measure `M` is one
//! Prometheus metric, named `M` when the field is `value` (how remote write stores a sample)
//! and `M_F` otherwise (line protocol: measure `cpu`, field `usage_user` → `cpu_usage_user`).
//! Tags are the labels. Integer fields are read as floats, booleans as 0 and 1; string fields
//! have no Prometheus form and are never returned. Matchers on `__name__` pick (measure, field)
//! pairs from the catalog; the other matchers are pushed down to the series index (regexes
//! anchored, as PromQL's are; a missing label matches `""`, as in Prometheus).
//!
//! Reads are bounded: the range is scanned one segment interval at a time and the request is
//! refused with the protocol's error (HTTP 400, `exceeded sample limit (N)`) as soon as the
//! series, sample or byte limit is passed; series arrive one at a time, so an oversized read
//! never holds more than one series beyond the limit. A read whose client went away stops at
//! its next series.

use std::collections::BTreeMap;

use strata_engine::model::{FieldType, GroupCatalog};
use strata_engine::{Column, Engine, ScanRequest, ScanSink, SeriesData, TagMatcher};
use strata_query::CancelToken;

use strata_prompb::{Label, Sample, TimeSeries};

pub use strata_prompb::{
    LabelMatcher, MatchType, Query, QueryResult, ReadRequest, ReadResponse, ResponseType,
};

/// What one read may return at most (all queries of the request together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_series: usize,
    pub max_samples: usize,
    /// Uncompressed response size.
    pub max_bytes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("bad protobuf: {0}")]
    Protobuf(#[from] strata_prompb::DecodeError),
    #[error("invalid matcher {name}: {reason}")]
    Matcher { name: String, reason: String },
    #[error("unknown matcher type {0}")]
    MatchType(i32),
    #[error(
        "none of the accepted response types is supported (Strata answers SAMPLES; streamed \
         chunks are not implemented)"
    )]
    ResponseType,
    #[error("exceeded series limit ({0})")]
    Series(usize),
    #[error("exceeded sample limit ({0})")]
    Samples(usize),
    #[error("exceeded bytes limit ({0})")]
    Bytes(usize),
    #[error("group '{0}' not found")]
    GroupNotFound(String),
    #[error("scan failed: {0}")]
    Scan(strata_engine::Error),
    #[error("read cancelled (the client went away or the server is shutting down)")]
    Cancelled,
}

impl ReadError {
    /// Whether the client is at fault (400) rather than the server (500).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, ReadError::Scan(_) | ReadError::Cancelled)
    }
}

/// The Prometheus metric name of field `field` of `measure`.
pub fn metric_name(measure: &str, field: &str) -> String {
    if field == "value" {
        measure.to_string()
    } else {
        format!("{measure}_{field}")
    }
}

/// Answer a decoded `ReadRequest` from `group`.
pub fn read(
    engine: &Engine,
    group: &str,
    req: &ReadRequest,
    limits: Limits,
) -> Result<ReadResponse, ReadError> {
    read_until(engine, group, req, limits, &[])
}

/// [`read`] that stops at the next series once any of `cancel` trips (the client went away,
/// the server is shutting down). Series are read one at a time and checked against the
/// limits as they arrive, so a read over the limits stops there instead of scanning on.
pub fn read_until(
    engine: &Engine,
    group: &str,
    req: &ReadRequest,
    limits: Limits,
    cancel: &[CancelToken],
) -> Result<ReadResponse, ReadError> {
    let samples_ok = req.accepted_response_types.is_empty()
        || req
            .accepted_response_types
            .contains(&(ResponseType::Samples as i32));
    if !samples_ok {
        return Err(ReadError::ResponseType);
    }
    let catalog = engine.catalog();
    let g = catalog
        .groups
        .iter()
        .find(|g| g.name == group)
        .ok_or_else(|| ReadError::GroupNotFound(group.to_string()))?;
    let mut budget = Budget {
        limits,
        series: 0,
        samples: 0,
        bytes: 0,
    };
    let mut results = Vec::with_capacity(req.queries.len());
    for q in &req.queries {
        results.push(QueryResult {
            timeseries: query(engine, g, q, &mut budget, cancel)?,
        });
    }
    Ok(ReadResponse { results })
}

struct Budget {
    limits: Limits,
    series: usize,
    samples: usize,
    bytes: usize,
}

impl Budget {
    fn new_series(&mut self, labels: &[Label]) -> Result<(), ReadError> {
        self.series += 1;
        if self.series > self.limits.max_series {
            return Err(ReadError::Series(self.limits.max_series));
        }
        // Each label and the series framing cost a few bytes of protobuf besides their text.
        self.add_bytes(
            labels
                .iter()
                .map(|l| l.name.len() + l.value.len() + 6)
                .sum::<usize>()
                + 8,
        )
    }

    fn add_samples(&mut self, n: usize) -> Result<(), ReadError> {
        self.samples += n;
        if self.samples > self.limits.max_samples {
            return Err(ReadError::Samples(self.limits.max_samples));
        }
        // A sample is a double and a varint timestamp: at most 22 bytes with its framing.
        self.add_bytes(n * 22)
    }

    fn add_bytes(&mut self, n: usize) -> Result<(), ReadError> {
        self.bytes += n;
        if self.bytes > self.limits.max_bytes {
            return Err(ReadError::Bytes(self.limits.max_bytes));
        }
        Ok(())
    }
}

fn query(
    engine: &Engine,
    g: &GroupCatalog,
    q: &Query,
    budget: &mut Budget,
    cancel: &[CancelToken],
) -> Result<Vec<TimeSeries>, ReadError> {
    let mut name_matchers = Vec::new();
    let mut tag_matchers = Vec::new();
    for m in &q.matchers {
        let tm = matcher(m)?;
        if m.name == "__name__" {
            name_matchers.push(tm);
        } else {
            tag_matchers.push(tm);
        }
    }
    // Both ends inclusive, in ms; the engine's range is [from, to) in ns.
    let from = q.start_timestamp_ms.saturating_mul(1_000_000);
    let to = q
        .end_timestamp_ms
        .saturating_add(1)
        .saturating_mul(1_000_000);
    if from >= to {
        return Ok(Vec::new());
    }
    let mut out: BTreeMap<Vec<(String, String)>, Vec<Sample>> = BTreeMap::new();
    for m in &g.measures {
        let fields: Vec<&str> = m
            .fields
            .iter()
            .filter(|(_, t)| *t != FieldType::Str)
            .map(|(f, _)| f.as_str())
            .filter(|f| {
                let name = [("__name__".to_string(), metric_name(&m.name, f))];
                name_matchers
                    .iter()
                    .all(|nm| crate::remote_read::holds(nm, &name))
            })
            .collect();
        if fields.is_empty() {
            continue;
        }
        // Data past the TTL is never returned, so the scan starts no earlier than that; the
        // windows are a segment interval wide, or 1/64 of a long range.
        let oldest = now_ns()
            .saturating_sub(g.settings.ttl_ns)
            .saturating_sub(g.settings.segment_interval_ns);
        let window = g
            .settings
            .segment_interval_ns
            .max(to.saturating_sub(from.max(oldest)) / 64)
            .max(1);
        let mut start = from.max(oldest);
        while start < to {
            let end = start
                .saturating_sub(start.rem_euclid(window))
                .saturating_add(window)
                .min(to);
            let req = ScanRequest {
                group: g.name.clone(),
                measure: m.name.clone(),
                from: start,
                to: end,
                matchers: tag_matchers.clone(),
                fields: Some(fields.iter().map(|f| f.to_string()).collect()),
            };
            let mut failed = None;
            let mut sink = Sink {
                cancel,
                each: |sd: SeriesData| {
                    let r = add_series(&mut out, budget, &m.name, &sd);
                    r.map_err(|e| failed = Some(e)).is_ok()
                },
            };
            engine.scan_each(&req, &mut sink).map_err(|e| match e {
                strata_engine::Error::GroupNotFound(g) => ReadError::GroupNotFound(g),
                other => ReadError::Scan(other),
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            if cancel.iter().any(CancelToken::is_cancelled) {
                return Err(ReadError::Cancelled);
            }
            start = end;
        }
    }
    Ok(out
        .into_iter()
        .map(|(labels, samples)| TimeSeries {
            labels: to_labels(&labels),
            samples,
        })
        .collect())
}

/// A scan sink that stops once a cancel token trips.
struct Sink<'a, F> {
    cancel: &'a [CancelToken],
    each: F,
}

impl<F: FnMut(SeriesData) -> bool> ScanSink for Sink<'_, F> {
    fn keep_going(&mut self) -> bool {
        !self.cancel.iter().any(CancelToken::is_cancelled)
    }

    fn series(&mut self, s: SeriesData) -> bool {
        (self.each)(s)
    }
}

/// One scanned series into the answer, one time series per numeric field, within `budget`.
fn add_series(
    out: &mut BTreeMap<Vec<(String, String)>, Vec<Sample>>,
    budget: &mut Budget,
    measure: &str,
    sd: &SeriesData,
) -> Result<(), ReadError> {
    for (field, col) in &sd.columns {
        let mut labels = sd.tags.clone();
        labels.push(("__name__".into(), metric_name(measure, field)));
        labels.sort();
        let samples = column_samples(&sd.timestamps, col);
        if samples.is_empty() {
            continue;
        }
        if !out.contains_key(&labels) {
            budget.new_series(&to_labels(&labels))?;
        }
        budget.add_samples(samples.len())?;
        out.entry(labels).or_default().extend(samples);
    }
    Ok(())
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn to_labels(l: &[(String, String)]) -> Vec<Label> {
    l.iter()
        .map(|(name, value)| Label {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

fn column_samples(ts: &[i64], col: &Column) -> Vec<Sample> {
    let at = |i: usize| -> Option<f64> {
        match col {
            Column::F64(v) => v[i],
            Column::I64(v) => v[i].map(|x| x as f64),
            Column::Bool(v) => v[i].map(|b| if b { 1.0 } else { 0.0 }),
            Column::Str(_) => None,
        }
    };
    ts.iter()
        .enumerate()
        .filter_map(|(i, &t)| {
            at(i).map(|value| Sample {
                value,
                timestamp: t.div_euclid(1_000_000),
            })
        })
        .collect()
}

/// A Prometheus matcher as an engine matcher; regexes are anchored at both ends.
fn matcher(m: &LabelMatcher) -> Result<TagMatcher, ReadError> {
    let re = |v: &str| {
        regex::Regex::new(&format!("^(?:{v})$")).map_err(|e| ReadError::Matcher {
            name: m.name.clone(),
            reason: e.to_string(),
        })
    };
    let (k, v) = (m.name.clone(), m.value.clone());
    Ok(match MatchType::try_from(m.r#type) {
        Ok(MatchType::Eq) => TagMatcher::Eq(k, v),
        Ok(MatchType::Neq) => TagMatcher::NotEq(k, v),
        Ok(MatchType::Re) => TagMatcher::Regex(k, re(&v)?),
        Ok(MatchType::Nre) => TagMatcher::NotRegex(k, re(&v)?),
        Err(_) => return Err(ReadError::MatchType(m.r#type)),
    })
}

/// Whether `m` holds for these labels (a missing label has the empty value).
fn holds(m: &TagMatcher, labels: &[(String, String)]) -> bool {
    strata_query::influxql::matcher_holds(m, labels)
}

#[cfg(test)]
mod tests;
