//! Shaping scan results into the answer: series keyed by group key, rows by time, optionally
//! aggregated per (group key, bucket).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_engine::{BlockSummary, SeriesData};

use crate::aggregate::{Acc, Cell};
use crate::budget::Account;
use crate::error::QueryError;
use crate::parse::{Agg, Order, Query};

/// `{"series":[{"tags":{..},"columns":["time",..],"values":[[..],..]}]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    pub series: Vec<ResultSeries>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultSeries {
    pub tags: BTreeMap<String, String>,
    /// `"time"` (ns since the epoch) first, then the fields.
    pub columns: Vec<String>,
    pub values: Vec<Vec<Value>>,
}

type GroupKey = Vec<(String, String)>;

/// Estimated bytes of one result cell as held and then serialised.
const CELL_BYTES: usize = std::mem::size_of::<Value>() + 24;
/// Estimated bytes of a result row besides its cells.
const ROW_BYTES: usize = 48;
/// Estimated bytes of one summarized block handed over by the scan.
pub(crate) const BLOCK_SUMMARY_BYTES: usize = 256;
/// Estimated bytes of one aggregation bucket besides its accumulators.
const BUCKET_BYTES: usize = 64;

/// Rows of one result series while the scan goes on.
enum Rows {
    /// (time, cells by field index); sorted and cut to `limit` from time to time.
    Raw(Vec<(i64, Vec<Value>)>),
    /// Bucket start → accumulators by field index.
    Agg(BTreeMap<i64, Vec<Acc>>),
}

/// Folds scanned series into the answer one at a time, charging what it keeps to `acct`.
pub(crate) struct Shaper<'q> {
    q: &'q Query,
    /// Output fields: the requested ones, or the measure's (in discovery order, sorted at the
    /// end) when the query names none.
    fields: Vec<String>,
    field_pos: HashMap<String, usize>,
    groups: BTreeMap<GroupKey, Rows>,
    min_ts: i64,
}

impl<'q> Shaper<'q> {
    pub(crate) fn new(q: &'q Query) -> Self {
        let fields = q.fields.clone().unwrap_or_default();
        let field_pos = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.clone(), i))
            .collect();
        Shaper {
            q,
            fields,
            field_pos,
            groups: BTreeMap::new(),
            min_ts: i64::MAX,
        }
    }

    /// Add one scanned series whose `blocks` came as summaries (only asked for aggregations).
    pub(crate) fn fold_with(
        &mut self,
        s: &SeriesData,
        blocks: &[BlockSummary],
        acct: &mut Account,
    ) -> Result<(), QueryError> {
        let map: Vec<Option<usize>> = s.columns.iter().map(|(n, _)| self.field_index(n)).collect();
        let width = self.fields.len();
        let (q, key) = (self.q, group_key(self.q, s));
        let rows = self.groups.entry(key).or_insert_with(|| match q.agg {
            Some(_) => Rows::Agg(BTreeMap::new()),
            None => Rows::Raw(Vec::new()),
        });
        match (rows, q.agg) {
            (Rows::Raw(out), _) => {
                fold_raw(out, s, &map, width, acct)?;
                if let Some(limit) = q.limit
                    && out.len() >= limit.saturating_mul(2).max(64)
                {
                    cut_raw(out, limit, q.order, acct);
                }
            }
            (Rows::Agg(buckets), Some(agg)) => {
                let min = fold_agg(buckets, s, blocks, &map, width, agg, q, acct)?;
                self.min_ts = self.min_ts.min(min);
            }
            (Rows::Agg(_), None) => {}
        }
        Ok(())
    }

    fn field_index(&mut self, name: &str) -> Option<usize> {
        if let Some(&i) = self.field_pos.get(name) {
            return Some(i);
        }
        if self.q.fields.is_some() {
            return None;
        }
        self.fields.push(name.to_string());
        self.field_pos
            .insert(name.to_string(), self.fields.len() - 1);
        Some(self.fields.len() - 1)
    }

    pub(crate) fn finish(self) -> QueryResult {
        // Discovered fields come out sorted by name; cells follow their field.
        let mut order: Vec<usize> = (0..self.fields.len()).collect();
        if self.q.fields.is_none() {
            order.sort_by(|&a, &b| self.fields[a].cmp(&self.fields[b]));
        }
        let mut columns = Vec::with_capacity(order.len() + 1);
        columns.push("time".to_string());
        columns.extend(order.iter().map(|&i| self.fields[i].clone()));
        let (q, min_ts) = (self.q, self.min_ts);
        let mut out = Vec::with_capacity(self.groups.len());
        for (key, rows) in self.groups {
            let mut values: Vec<Vec<Value>> = match rows {
                Rows::Raw(r) => raw_rows(r, &order),
                Rows::Agg(buckets) => agg_rows(q, min_ts, buckets, &order),
            };
            if q.order == Order::Desc {
                values.reverse();
            }
            if let Some(limit) = q.limit {
                values.truncate(limit);
            }
            if values.is_empty() {
                continue;
            }
            out.push(ResultSeries {
                tags: key.into_iter().collect(),
                columns: columns.clone(),
                values,
            });
        }
        QueryResult { series: out }
    }
}

fn raw_rows(mut r: Vec<(i64, Vec<Value>)>, order: &[usize]) -> Vec<Vec<Value>> {
    // Stable: rows of one timestamp keep their series order.
    r.sort_by_key(|(ts, _)| *ts);
    r.into_iter()
        .map(|(ts, mut cells)| {
            let mut row = Vec::with_capacity(order.len() + 1);
            row.push(Value::from(ts));
            row.extend(
                order
                    .iter()
                    .map(|&i| cells.get_mut(i).map_or(Value::Null, std::mem::take)),
            );
            row
        })
        .collect()
}

fn agg_rows(
    q: &Query,
    min_ts: i64,
    buckets: BTreeMap<i64, Vec<Acc>>,
    order: &[usize],
) -> Vec<Vec<Value>> {
    let empty = q.agg.map(|a| Acc::new(a.func));
    buckets
        .into_iter()
        .map(|(bucket, accs)| {
            // A single whole-range bucket is stamped with the range start, or with the first
            // point when the range is unbounded.
            let time = match q.agg.and_then(|a| a.every) {
                Some(_) => bucket,
                None if q.from != i64::MIN => q.from,
                None => min_ts,
            };
            let mut row = Vec::with_capacity(order.len() + 1);
            row.push(Value::from(time));
            row.extend(order.iter().map(|&i| {
                accs.get(i)
                    .or(empty.as_ref())
                    .map_or(Value::Null, Acc::finish)
            }));
            row
        })
        .collect()
}

fn cell_bytes(v: &Value) -> usize {
    CELL_BYTES
        + match v {
            Value::String(s) => s.len(),
            _ => 0,
        }
}

fn row_bytes(cells: &[Value]) -> usize {
    ROW_BYTES + cells.iter().map(cell_bytes).sum::<usize>()
}

fn fold_raw(
    out: &mut Vec<(i64, Vec<Value>)>,
    s: &SeriesData,
    map: &[Option<usize>],
    width: usize,
    acct: &mut Account,
) -> Result<(), QueryError> {
    for (i, &ts) in s.timestamps.iter().enumerate() {
        let mut cells = vec![Value::Null; width];
        let mut any = false;
        for (c, (_, col)) in map.iter().zip(&s.columns) {
            if let (Some(c), Some(cell)) = (c, Cell::at(col, i)) {
                cells[*c] = cell.to_json();
                any = true;
            }
        }
        if !any {
            continue;
        }
        acct.charge(row_bytes(&cells))?;
        out.push((ts, cells));
    }
    Ok(())
}

/// Keep the `limit` rows the answer can still show: the earliest for `asc`, the latest for
/// `desc` (ties in arrival order, as the final stable sort orders them).
fn cut_raw(out: &mut Vec<(i64, Vec<Value>)>, limit: usize, order: Order, acct: &mut Account) {
    out.sort_by_key(|(ts, _)| *ts);
    let dropped: Vec<(i64, Vec<Value>)> = match order {
        Order::Asc => out.split_off(limit.min(out.len())),
        Order::Desc => {
            let tail = out.split_off(out.len().saturating_sub(limit));
            std::mem::replace(out, tail)
        }
    };
    acct.release(dropped.iter().map(|(_, c)| row_bytes(c)).sum());
}

/// Fold a series into buckets; returns its earliest timestamp that had a value. With a
/// `limit`, only the buckets the answer can still show are kept: a bucket past the `limit`
/// first (or last, for `desc`) keys can never come back into them, as keys are only added.
/// Summarized `blocks` are folded at their place in time order, so every accumulator sees
/// values in the order the decoded points would have come.
#[allow(clippy::too_many_arguments)]
fn fold_agg(
    buckets: &mut BTreeMap<i64, Vec<Acc>>,
    s: &SeriesData,
    blocks: &[BlockSummary],
    map: &[Option<usize>],
    width: usize,
    agg: Agg,
    q: &Query,
    acct: &mut Account,
) -> Result<i64, QueryError> {
    let mut f = BucketFolder {
        buckets,
        bucket_bytes: BUCKET_BYTES + width * (std::mem::size_of::<Acc>() + CELL_BYTES),
        width,
        agg,
        q,
        min_ts: i64::MAX,
    };
    let mut next_block = blocks.iter().peekable();
    let ts = &s.timestamps;
    let mut i = 0;
    while i < ts.len() {
        while let Some(b) = next_block.next_if(|b| b.max_ts < ts[i]) {
            f.block(b, s, map, acct)?;
        }
        // A run of points in one bucket (and before the next summarized block) shares its
        // accumulators: one bucket lookup per run, not per point and field.
        let bucket = bucket_of(agg, ts[i]);
        let before = next_block.peek().map_or(i64::MAX, |b| b.min_ts);
        let mut j = i + 1;
        while j < ts.len() && ts[j] < before && bucket_of(agg, ts[j]) == bucket {
            j += 1;
        }
        let mut min_ts = f.min_ts;
        // As point by point: the bucket is made (or refused) at the run's first value.
        let any = (i..j).any(|k| {
            map.iter()
                .zip(&s.columns)
                .any(|(c, (_, col))| c.is_some() && Cell::at(col, k).is_some())
        });
        let mut accs = if any { f.accs(bucket, acct)? } else { None };
        for (k, &t) in ts.iter().enumerate().take(j).skip(i) {
            for (c, (name, col)) in map.iter().zip(&s.columns) {
                let (Some(fi), Some(cell)) = (*c, Cell::at(col, k)) else {
                    continue;
                };
                min_ts = min_ts.min(t);
                if let Some(acc) = accs.as_deref_mut().and_then(|a| a.get_mut(fi)) {
                    acc.add(name, t, cell)?;
                }
            }
        }
        f.min_ts = min_ts;
        i = j;
    }
    for b in next_block {
        f.block(b, s, map, acct)?;
    }
    Ok(f.min_ts)
}

fn bucket_of(agg: Agg, ts: i64) -> i64 {
    match agg.every {
        Some(every) => ts.checked_sub(ts.rem_euclid(every)).unwrap_or(i64::MIN),
        None => 0,
    }
}

/// The state [`fold_agg`] shares between points and summarized blocks.
struct BucketFolder<'b, 'q> {
    buckets: &'b mut BTreeMap<i64, Vec<Acc>>,
    bucket_bytes: usize,
    width: usize,
    agg: Agg,
    q: &'q Query,
    min_ts: i64,
}

impl BucketFolder<'_, '_> {
    /// The accumulators of `bucket`, made if the answer can show it.
    fn accs(
        &mut self,
        bucket: i64,
        acct: &mut Account,
    ) -> Result<Option<&mut Vec<Acc>>, QueryError> {
        if !self.buckets.contains_key(&bucket) {
            if !make_room(self.buckets, bucket, self.q, self.bucket_bytes, acct) {
                return Ok(None);
            }
            acct.charge(self.bucket_bytes)?;
        }
        let accs = self.buckets.entry(bucket).or_default();
        if accs.len() < self.width {
            let func = self.agg.func;
            accs.resize_with(self.width, || Acc::new(func));
        }
        Ok(Some(accs))
    }

    /// The accumulator of field `fi` in `bucket`, made if the answer can show it.
    fn acc(
        &mut self,
        bucket: i64,
        fi: usize,
        acct: &mut Account,
    ) -> Result<Option<&mut Acc>, QueryError> {
        Ok(self.accs(bucket, acct)?.and_then(|a| a.get_mut(fi)))
    }

    fn block(
        &mut self,
        b: &BlockSummary,
        s: &SeriesData,
        map: &[Option<usize>],
        acct: &mut Account,
    ) -> Result<(), QueryError> {
        // The engine gives only blocks inside one bucket.
        let bucket = bucket_of(self.agg, b.min_ts);
        for ((c, (name, _)), fa) in map.iter().zip(&s.columns).zip(&b.fields) {
            let (Some(fi), Some(fa)) = (*c, fa) else {
                continue;
            };
            self.min_ts = self.min_ts.min(first_ts(fa));
            if let Some(acc) = self.acc(bucket, fi, acct)? {
                acc.add_summary(name, fa)?;
            }
        }
        Ok(())
    }
}

fn first_ts(fa: &strata_engine::FieldAgg) -> i64 {
    match &fa.summary {
        strata_engine::summary::FieldSummary::F64(s) => s.first.0,
        strata_engine::summary::FieldSummary::I64(s) => s.first.0,
    }
}

/// Whether a new bucket `key` can be shown under the query's `limit`; evicts the bucket it
/// pushes out of the shown ones.
fn make_room(
    buckets: &mut BTreeMap<i64, Vec<Acc>>,
    key: i64,
    q: &Query,
    bucket_bytes: usize,
    acct: &mut Account,
) -> bool {
    let Some(limit) = q.limit else {
        return true;
    };
    if buckets.len() < limit {
        return true;
    }
    let beyond = match q.order {
        Order::Asc => buckets.last_key_value().is_some_and(|(k, _)| key > *k),
        Order::Desc => buckets.first_key_value().is_some_and(|(k, _)| key < *k),
    };
    if beyond {
        return false;
    }
    let gone = match q.order {
        Order::Asc => buckets.pop_last(),
        Order::Desc => buckets.pop_first(),
    };
    if gone.is_some() {
        acct.release(bucket_bytes);
    }
    true
}

/// Without aggregation or `group_by` every stored series is its own result series; otherwise
/// series are merged by the `group_by` tags (a missing tag groups as the empty value).
fn group_key(q: &Query, s: &SeriesData) -> GroupKey {
    if q.agg.is_none() && q.group_by.is_empty() {
        return s.tags.clone();
    }
    q.group_by
        .iter()
        .map(|k| {
            let v = s
                .tags
                .iter()
                .find(|(tk, _)| tk == k)
                .map(|(_, v)| v.clone());
            (k.clone(), v.unwrap_or_default())
        })
        .collect()
}

/// Estimated bytes of a scanned series while it is folded.
pub(crate) fn series_bytes(s: &SeriesData) -> usize {
    use strata_engine::Column;
    let n = s.timestamps.len();
    let cols: usize = s
        .columns
        .iter()
        .map(|(name, c)| {
            name.len()
                + match c {
                    Column::F64(_) | Column::I64(_) => n * 16,
                    Column::Bool(_) => n * 2,
                    Column::Str(v) => v
                        .iter()
                        .map(|x| 24 + x.as_ref().map_or(0, String::len))
                        .sum(),
                }
        })
        .sum();
    64 + n * 8 + cols
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use strata_engine::{Column, ScanRequest};

    use super::*;
    use crate::{execute, plan};

    fn series(host: &str, dc: &str, rows: &[(i64, f64, i64)]) -> SeriesData {
        SeriesData {
            tags: vec![("dc".into(), dc.into()), ("host".into(), host.into())],
            timestamps: rows.iter().map(|r| r.0).collect(),
            columns: vec![
                (
                    "n".into(),
                    Column::I64(rows.iter().map(|r| Some(r.2)).collect()),
                ),
                (
                    "u".into(),
                    Column::F64(rows.iter().map(|r| Some(r.1)).collect()),
                ),
            ],
        }
    }

    fn data() -> Vec<SeriesData> {
        vec![
            series("h1", "eu", &[(0, 1.0, 10), (30, 3.0, 20), (60, 5.0, 30)]),
            series("h2", "eu", &[(10, 10.0, 1), (70, 20.0, 2)]),
            series("h3", "us", &[(20, 100.0, 5)]),
        ]
    }

    fn run(json: &str) -> QueryResult {
        let src = |_: &ScanRequest| -> Result<Vec<SeriesData>, strata_engine::Error> { Ok(data()) };
        execute(&src, &Query::from_json(json.as_bytes()).unwrap()).unwrap()
    }

    fn rows(s: &ResultSeries) -> Vec<Vec<Value>> {
        s.values.clone()
    }

    #[test]
    fn raw_keeps_one_series_per_stored_series() {
        let r = run(r#"{"group":"g","measure":"m","fields":["u"]}"#);
        assert_eq!(r.series.len(), 3);
        assert_eq!(r.series[0].columns, vec!["time", "u"]);
        assert_eq!(r.series[0].tags["host"], "h1");
        assert_eq!(
            rows(&r.series[0]),
            vec![
                vec![Value::from(0), Value::from(1.0)],
                vec![Value::from(30), Value::from(3.0)],
                vec![Value::from(60), Value::from(5.0)]
            ]
        );
    }

    #[test]
    fn all_fields_sorted_when_not_projected() {
        let r = run(r#"{"group":"g","measure":"m"}"#);
        assert_eq!(r.series[0].columns, vec!["time", "n", "u"]);
    }

    #[test]
    fn sum_per_minute_grouped_by_dc() {
        let r = run(r#"{"group":"g","measure":"m","fields":["u","n"],
                "agg":{"fn":"sum","every":60},"group_by":["dc"]}"#);
        assert_eq!(r.series.len(), 2);
        let eu = &r.series[0];
        assert_eq!(eu.tags, BTreeMap::from([("dc".into(), "eu".into())]));
        // bucket 0: h1 {1,3} + h2 {10}; bucket 60: h1 {5} + h2 {20}
        assert_eq!(
            rows(eu),
            vec![
                vec![Value::from(0), Value::from(14.0), Value::from(31)],
                vec![Value::from(60), Value::from(25.0), Value::from(32)]
            ]
        );
        assert_eq!(rows(&r.series[1])[0][1], Value::from(100.0));
    }

    #[test]
    fn whole_range_aggregate_without_every() {
        let r = run(r#"{"group":"g","measure":"m","fields":["u"],"agg":{"fn":"max"}}"#);
        assert_eq!(r.series.len(), 1);
        assert!(r.series[0].tags.is_empty());
        assert_eq!(
            rows(&r.series[0]),
            vec![vec![Value::from(0), Value::from(100.0)]]
        );
        let r = run(r#"{"group":"g","measure":"m","from":5,"fields":["u"],"agg":{"fn":"count"}}"#);
        assert_eq!(
            rows(&r.series[0]),
            vec![vec![Value::from(5), Value::from(6)]]
        );
    }

    #[test]
    fn desc_order_and_limit_take_the_newest() {
        let r = run(r#"{"group":"g","measure":"m","fields":["u"],"limit":2,"order":"desc"}"#);
        let times: Vec<_> = r.series[0].values.iter().map(|r| r[0].clone()).collect();
        assert_eq!(times, vec![Value::from(60), Value::from(30)]);
    }

    #[test]
    fn aggregating_a_string_field_with_sum_is_a_client_error() {
        let src = |_: &ScanRequest| -> Result<Vec<SeriesData>, strata_engine::Error> {
            Ok(vec![SeriesData {
                tags: vec![],
                timestamps: vec![1],
                columns: vec![("s".into(), Column::Str(vec![Some("x".into())]))],
            }])
        };
        let q = Query::from_json(br#"{"group":"g","measure":"m","agg":{"fn":"sum"}}"#).unwrap();
        let err = execute(&src, &q).unwrap_err();
        assert!(err.is_client_error(), "{err}");
        let q = Query::from_json(br#"{"group":"g","measure":"m","agg":{"fn":"last"}}"#).unwrap();
        assert_eq!(execute(&src, &q).unwrap().series[0].values[0][1], "x");
    }

    #[test]
    fn plan_pushes_filters_and_projection_down() {
        let q = Query::from_json(
            br#"{"group":"g","measure":"m","from":1,"to":9,"where":{"h":"a"},"fields":["u"]}"#,
        )
        .unwrap();
        let seen = std::cell::RefCell::new(None);
        let src = |r: &ScanRequest| -> Result<Vec<SeriesData>, strata_engine::Error> {
            *seen.borrow_mut() = Some(r.clone());
            Ok(vec![])
        };
        assert!(execute(&src, &q).unwrap().series.is_empty());
        let r = seen.borrow().clone().unwrap();
        assert_eq!(
            (r.from, r.to, r.fields),
            (1, 9, Some(vec!["u".to_string()]))
        );
        assert_eq!(r.matchers.len(), 1);
        assert_eq!(plan(&q).group, "g");
    }
}
