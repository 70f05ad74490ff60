//! The query planner and executor on size-aware inputs (issue 18): the bytes pick a query
//! with long field and `where` lists (repeats included), huge or extreme numbers for `from`,
//! `to`, `every` and `limit`, and the synthetic series it runs over under a small memory
//! budget. Besides not panicking, the answer must keep its promises: at most `limit` rows per
//! series, one column per distinct field, aligned rows, bucket times on `every` boundaries.

use serde_json::{Value, json};
use strata_engine::{Column, ScanRequest, SeriesData};
use strata_query::{Limits, Query, QueryError};

/// Reads the input as a stream of choices; past its end every choice is 0.
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }

    fn below(&mut self, n: usize) -> usize {
        let v = u16::from_le_bytes([self.byte(), self.byte()]) as usize;
        v % n.max(1)
    }

    /// Numbers that break arithmetic: the ends of i64 and of the valid range, near zero.
    fn extreme(&mut self) -> i64 {
        use strata_engine::model::{MAX_TIMESTAMP, MIN_TIMESTAMP};
        let small = i64::from(self.byte() as i8);
        match self.byte() % 8 {
            0 => i64::MAX - small.abs(),
            1 => i64::MIN + small.abs(),
            2 => MAX_TIMESTAMP + small,
            3 => MIN_TIMESTAMP + small,
            4 => small,
            5 => i64::from_le_bytes(std::array::from_fn(|_| self.byte())),
            6 => 1_700_000_000_000_000_000 + small * 60_000_000_000,
            _ => small * 1_000_000_000,
        }
    }
}

fn time_value(c: &mut Choices<'_>) -> Value {
    match c.byte() % 4 {
        0 => json!(c.extreme()),
        1 => json!("2262-04-11T23:47:16.854775807Z"),
        2 => json!(format!("{}-01-01T00:00:00Z", 1 + c.below(9999))),
        _ => json!(u64::MAX),
    }
}

fn every_value(c: &mut Choices<'_>) -> Value {
    match c.byte() % 6 {
        0 => json!(format!(
            "{}d",
            u64::from_le_bytes(std::array::from_fn(|_| c.byte()))
        )),
        1 => json!(c.extreme()),
        2 => json!(format!("{}ns", 1 + c.below(1000))),
        3 => json!("1m"),
        4 => json!(1e300),
        _ => json!(format!("{}years", c.below(200))),
    }
}

/// Build the query JSON the bytes describe.
fn query_json(c: &mut Choices<'_>) -> Value {
    let mut q = json!({"group": "g", "measure": "m"});
    let n_fields = [0, 1, 3, 1000, 5000][c.byte() as usize % 5];
    if n_fields > 0 {
        let distinct = 1 + c.below(6);
        let fields: Vec<String> = (0..n_fields)
            .map(|i| format!("f{}", (i * 7 + c.below(3)) % distinct))
            .collect();
        q["fields"] = json!(fields);
    }
    if c.byte().is_multiple_of(2) {
        q["from"] = time_value(c);
    }
    if c.byte().is_multiple_of(2) {
        q["to"] = time_value(c);
    }
    if c.byte().is_multiple_of(3) {
        let n = [1, 100, 5000][c.byte() as usize % 3];
        let hosts: Vec<String> = (0..n).map(|i| format!("h{}", i % 7)).collect();
        q["where"] = json!({"host": hosts});
    }
    const FNS: [&str; 7] = ["count", "sum", "min", "max", "mean", "first", "last"];
    match c.byte() % 3 {
        0 => {}
        1 => {
            let f = FNS[c.below(FNS.len())];
            q["agg"] = json!({ "fn": f });
        }
        _ => {
            let f = FNS[c.below(3)];
            q["agg"] = json!({ "fn": f, "every": every_value(c) });
        }
    }
    if c.byte().is_multiple_of(2) {
        q["group_by"] = json!(["host"]);
    }
    if c.byte().is_multiple_of(2) {
        q["limit"] = match c.byte() % 4 {
            0 => json!(u64::MAX),
            1 => json!(0),
            _ => json!(1 + c.below(5)),
        };
    }
    if c.byte().is_multiple_of(2) {
        q["order"] = json!("desc");
    }
    q
}

/// Synthetic series for a scan: a few hosts, timestamps at the extremes, the requested fields.
fn series(req: &ScanRequest, seed: &[u8]) -> Vec<SeriesData> {
    let mut c = Choices(seed);
    let names: Vec<String> = req
        .fields
        .clone()
        .unwrap_or_else(|| (0..3).map(|i| format!("f{i}")).collect());
    (0..1 + c.below(6))
        .map(|h| {
            let mut ts: Vec<i64> = (0..c.below(64))
                .map(|_| c.extreme())
                .filter(|t| (req.from..req.to).contains(t))
                .collect();
            ts.sort_unstable();
            ts.dedup();
            let columns = names
                .iter()
                .map(|n| {
                    let col = match c.byte() % 3 {
                        0 => Column::F64(ts.iter().map(|&t| Some(t as f64)).collect()),
                        1 => Column::I64(ts.iter().map(|&t| Some(t)).collect()),
                        _ => Column::Str(ts.iter().map(|t| Some(t.to_string())).collect()),
                    };
                    (n.clone(), col)
                })
                .collect();
            SeriesData {
                tags: vec![("host".into(), format!("h{h}"))],
                timestamps: ts,
                columns,
            }
        })
        .collect()
}

pub fn query_plan(data: &[u8]) {
    let mut c = Choices(data);
    let json = query_json(&mut c);
    let seed = c.0;
    let Ok(q) = Query::from_json(json.to_string().as_bytes()) else {
        return;
    };
    let plan = strata_query::plan(&q);
    assert!(plan.from < plan.to);
    if let Some(f) = &plan.fields {
        let distinct: std::collections::BTreeSet<&String> = f.iter().collect();
        assert_eq!(distinct.len(), f.len(), "repeated fields reach the scan");
    }
    if let Some(e) = q.agg.and_then(|a| a.every) {
        assert!(e > 0 && e <= strata_query::MAX_EVERY_NS);
    }
    let src =
        |r: &ScanRequest| -> Result<Vec<SeriesData>, strata_engine::Error> { Ok(series(r, seed)) };
    let limits = Limits {
        query_bytes: 64 << 10,
        ..Limits::default()
    };
    match strata_query::execute_with(&src, &q, &limits) {
        Ok((r, acct)) => {
            assert!(acct.held() <= 64 << 10);
            for s in &r.series {
                if let Some(l) = q.limit {
                    assert!(s.values.len() <= l);
                }
                let cols: std::collections::BTreeSet<&String> = s.columns.iter().collect();
                assert_eq!(cols.len(), s.columns.len(), "duplicate columns");
                for row in &s.values {
                    assert_eq!(row.len(), s.columns.len());
                    if let (Some(every), Some(t)) = (q.agg.and_then(|a| a.every), row[0].as_i64()) {
                        // A bucket whose grid start lies before i64::MIN (points within `every`
                        // of the earliest nanosecond, which only a data dir written before the
                        // timestamp range existed can hold) is labelled i64::MIN: docs/API.md.
                        assert!(
                            t.rem_euclid(every) == 0 || t == i64::MIN,
                            "bucket {t} not on {every}"
                        );
                    }
                }
            }
        }
        Err(QueryError::TooLarge { .. } | QueryError::AggType { .. }) => {}
        Err(e) => panic!("unexpected error: {e}"),
    }
}
