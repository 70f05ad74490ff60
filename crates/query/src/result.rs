//! Shaping scan results into the answer: series keyed by group key, rows by time, optionally
//! aggregated per (group key, bucket).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_engine::SeriesData;

use crate::aggregate::{Acc, Cell};
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

pub(crate) fn shape(q: &Query, data: Vec<SeriesData>) -> Result<QueryResult, QueryError> {
    let fields: Vec<String> = match &q.fields {
        Some(f) => f.clone(),
        None => data
            .iter()
            .flat_map(|s| s.columns.iter().map(|(n, _)| n.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let mut groups: BTreeMap<GroupKey, Vec<&SeriesData>> = BTreeMap::new();
    for s in &data {
        groups.entry(group_key(q, s)).or_default().push(s);
    }
    let mut columns = Vec::with_capacity(fields.len() + 1);
    columns.push("time".to_string());
    columns.extend(fields.iter().cloned());

    let mut out = Vec::with_capacity(groups.len());
    for (key, members) in groups {
        let mut values = match q.agg {
            Some(agg) => aggregate(q, agg, &fields, &members)?,
            None => raw(&fields, &members),
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
    Ok(QueryResult { series: out })
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

/// For each requested field, the index of its column in `s` (if the series has it).
fn column_map(fields: &[String], s: &SeriesData) -> Vec<Option<usize>> {
    fields
        .iter()
        .map(|f| s.columns.iter().position(|(n, _)| n == f))
        .collect()
}

fn raw(fields: &[String], members: &[&SeriesData]) -> Vec<Vec<Value>> {
    let mut rows: Vec<(i64, Vec<Value>)> = Vec::new();
    for s in members {
        let map = column_map(fields, s);
        for (i, &ts) in s.timestamps.iter().enumerate() {
            let cells: Vec<Value> = map
                .iter()
                .map(|c| {
                    c.and_then(|c| Cell::at(&s.columns[c].1, i))
                        .map_or(Value::Null, Cell::to_json)
                })
                .collect();
            if cells.iter().all(Value::is_null) {
                continue;
            }
            rows.push((ts, cells));
        }
    }
    // Stable: rows of one timestamp keep their series order.
    rows.sort_by_key(|(ts, _)| *ts);
    rows.into_iter()
        .map(|(ts, cells)| {
            let mut row = Vec::with_capacity(cells.len() + 1);
            row.push(Value::from(ts));
            row.extend(cells);
            row
        })
        .collect()
}

fn aggregate<'a>(
    q: &Query,
    agg: Agg,
    fields: &[String],
    members: &[&'a SeriesData],
) -> Result<Vec<Vec<Value>>, QueryError> {
    let mut buckets: BTreeMap<i64, Vec<Acc<'a>>> = BTreeMap::new();
    let mut min_ts = i64::MAX;
    for s in members {
        let map = column_map(fields, s);
        for (i, &ts) in s.timestamps.iter().enumerate() {
            let bucket = match agg.every {
                Some(every) => ts.checked_sub(ts.rem_euclid(every)).unwrap_or(i64::MIN),
                None => 0,
            };
            for (fi, c) in map.iter().enumerate() {
                let Some(cell) = c.and_then(|c| Cell::at(&s.columns[c].1, i)) else {
                    continue;
                };
                min_ts = min_ts.min(ts);
                let accs = buckets
                    .entry(bucket)
                    .or_insert_with(|| vec![Acc::new(agg.func); fields.len()]);
                accs[fi].add(&fields[fi], ts, cell)?;
            }
        }
    }
    Ok(buckets
        .into_iter()
        .map(|(bucket, accs)| {
            // A single whole-range bucket is stamped with the range start, or with the first
            // point when the range is unbounded.
            let time = match agg.every {
                Some(_) => bucket,
                None if q.from != i64::MIN => q.from,
                None => min_ts,
            };
            let mut row = Vec::with_capacity(accs.len() + 1);
            row.push(Value::from(time));
            row.extend(accs.iter().map(Acc::finish));
            row
        })
        .collect())
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
