//! Aggregation pushdown never changes an answer: random data (NaN, ±inf, -0.0, extreme
//! integers) written through the engine as overlapping parts, merged parts and memtable rows,
//! queried with random functions, ranges, buckets and group-by, answered once with block
//! summaries (the engine) and once from decoded points only (the same engine behind a source
//! that only scans), must be equal to the bit.

#![allow(clippy::unwrap_used)]

use std::cell::Cell;

use proptest::prelude::*;
use strata_engine::{
    BlockSummary, Engine, EngineOptions, FieldValue, FsyncPolicy, GroupSettings, Point,
    ScanRequest, ScanSink, SeriesData, SummaryRequest, SummarySink,
};
use strata_query::{Query, QueryError, QueryResult, ScanSource, execute};

const DAY: i64 = strata_engine::model::NANOS_PER_DAY;
const STEP: i64 = 1_000;

/// The engine without summaries: every block decoded.
struct PointsOnly<'a>(&'a Engine);

impl ScanSource for PointsOnly<'_> {
    fn scan(&self, req: &ScanRequest) -> Result<Vec<SeriesData>, strata_engine::Error> {
        self.0.scan(req)
    }
    fn scan_each(
        &self,
        req: &ScanRequest,
        sink: &mut dyn ScanSink,
    ) -> Result<(), strata_engine::Error> {
        self.0.scan_each(req, sink)
    }
}

/// The engine with summaries, counting the blocks it answered from them.
struct Counting<'a>(&'a Engine, Cell<usize>);

struct CountSink<'a, 'b>(&'a mut dyn SummarySink, &'b Cell<usize>);

impl SummarySink for CountSink<'_, '_> {
    fn keep_going(&mut self) -> bool {
        self.0.keep_going()
    }
    fn series(&mut self, s: SeriesData, blocks: Vec<BlockSummary>) -> bool {
        self.1.set(self.1.get() + blocks.len());
        self.0.series(s, blocks)
    }
}

impl ScanSource for Counting<'_> {
    fn scan(&self, req: &ScanRequest) -> Result<Vec<SeriesData>, strata_engine::Error> {
        self.0.scan(req)
    }
    fn scan_summarized(
        &self,
        req: &ScanRequest,
        summaries: SummaryRequest,
        sink: &mut dyn SummarySink,
    ) -> Result<(), strata_engine::Error> {
        self.0
            .scan_summarized(req, summaries, &mut CountSink(sink, &self.1))
    }
}

const FLOATS: [f64; 12] = [
    0.0,
    -0.0,
    1.5,
    -2.25,
    0.1,
    1e300,
    -1e300,
    f64::MAX,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MIN_POSITIVE,
];
const INTS: [i64; 7] = [0, 1, -1, i64::MAX, i64::MIN, 42, 1 << 53];

#[derive(Debug, Clone)]
struct Write {
    host: u8,
    ts: i64,
    f: Option<usize>,
    i: Option<usize>,
    s: bool,
}

#[derive(Debug, Clone)]
enum Step {
    Write(Vec<Write>),
    Flush,
    Compact,
}

fn write() -> impl Strategy<Value = Write> {
    (
        0u8..3,
        0i64..400,
        prop::option::weighted(0.9, 0..FLOATS.len() * 4),
        prop::option::weighted(0.7, 0..INTS.len() * 4),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(host, t, f, i, s)| Write {
            host,
            ts: t * STEP,
            f,
            i,
            s,
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => prop::collection::vec(write(), 1..80).prop_map(Step::Write),
        3 => Just(Step::Flush),
        1 => Just(Step::Compact),
    ]
}

fn float(k: usize) -> f64 {
    // Mostly ordinary values, so sums stay finite often enough to compare digits.
    if k < FLOATS.len() {
        FLOATS[k]
    } else {
        (k as f64 - 20.0) * 0.37
    }
}

fn int(k: usize) -> i64 {
    if k < INTS.len() {
        INTS[k]
    } else {
        k as i64 * 1000 - 7
    }
}

fn points(ws: &[Write]) -> Vec<Point> {
    ws.iter()
        .filter(|w| w.f.is_some() || w.i.is_some() || w.s)
        .map(|w| {
            let mut fields = Vec::new();
            if let Some(k) = w.f {
                fields.push(("f".into(), FieldValue::F64(float(k))));
            }
            if let Some(k) = w.i {
                fields.push(("i".into(), FieldValue::I64(int(k))));
            }
            if w.s {
                fields.push(("s".into(), FieldValue::Str("x".into())));
            }
            Point {
                measure: "m".into(),
                tags: vec![
                    ("host".into(), format!("h{}", w.host)),
                    ("dc".into(), format!("d{}", w.host % 2)),
                ],
                fields,
                timestamp: w.ts,
            }
        })
        .collect()
}

fn engine(dir: &std::path::Path, steps: &[Step]) -> Engine {
    let mut o = EngineOptions::new(dir);
    o.background = false;
    o.fsync = FsyncPolicy::Never;
    let e = Engine::open(o).unwrap();
    e.put_group(
        "g",
        GroupSettings {
            ttl_ns: 36500 * DAY,
            segment_interval_ns: DAY,
            shards: 1,
            backup_tier: "hot".into(),
        },
    )
    .unwrap();
    for s in steps {
        match s {
            Step::Write(ws) => {
                e.write("g", &points(ws)).unwrap();
            }
            Step::Flush => e.flush().unwrap(),
            Step::Compact => e.compact().unwrap(),
        }
    }
    e
}

#[derive(Debug, Clone)]
struct Q {
    func: &'static str,
    every: Option<i64>,
    from: Option<i64>,
    to: Option<i64>,
    fields: &'static str,
    group_by: bool,
    host: Option<u8>,
}

fn query() -> impl Strategy<Value = Q> {
    (
        prop::sample::select(vec!["count", "sum", "min", "max", "mean", "first", "last"]),
        prop::option::of(prop::sample::select(vec![
            STEP,
            7 * STEP,
            50 * STEP,
            1000 * STEP,
        ])),
        prop::option::of(-10i64..400),
        prop::option::of(0i64..420),
        prop::sample::select(vec![r#"["f"]"#, r#"["i"]"#, r#"["f","i"]"#, "null"]),
        any::<bool>(),
        prop::option::weighted(0.3, 0u8..3),
    )
        .prop_map(|(func, every, from, to, fields, group_by, host)| Q {
            func,
            every,
            from: from.map(|t| t * STEP),
            to: to.map(|t| t * STEP + 1),
            fields,
            group_by,
            host,
        })
}

impl Q {
    fn json(&self) -> String {
        let mut agg = format!(r#"{{"fn":"{}""#, self.func);
        if let Some(e) = self.every {
            agg.push_str(&format!(r#","every":{e}"#));
        }
        agg.push('}');
        let mut q = format!(
            r#"{{"group":"g","measure":"m","agg":{agg},"fields":{}"#,
            self.fields
        );
        if let Some(f) = self.from {
            q.push_str(&format!(r#","from":{f}"#));
        }
        if let Some(t) = self.to {
            q.push_str(&format!(r#","to":{t}"#));
        }
        if self.group_by {
            q.push_str(r#","group_by":["dc"]"#);
        }
        if let Some(h) = self.host {
            q.push_str(&format!(r#","where":{{"host":"h{h}"}}"#));
        }
        q.push('}');
        q
    }
}

fn answer(src: &dyn ScanSource, q: &Query) -> Result<QueryResult, String> {
    execute(src, q).map_err(|e: QueryError| e.to_string())
}

proptest! {
    // STRATA_PUSHDOWN_CASES=N runs more cases by hand (RELIABILITY.md).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("STRATA_PUSHDOWN_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        ..ProptestConfig::default()
    })]

    #[test]
    fn summaries_never_change_an_answer(
        steps in prop::collection::vec(step(), 1..14),
        queries in prop::collection::vec(query(), 40),
    ) {
        let d = tempfile::tempdir().unwrap();
        let e = engine(d.path(), &steps);
        let counting = Counting(&e, Cell::new(0));
        for q in &queries {
            let json = q.json();
            let Ok(parsed) = Query::from_json(json.as_bytes()) else { continue };
            let with = answer(&counting, &parsed);
            let without = answer(&PointsOnly(&e), &parsed);
            prop_assert_eq!(with, without, "{}", json);
        }
    }
}

/// The property above is only worth something if summaries are used: on data made of flushed
/// parts with whole-range aggregations most blocks come as summaries, and the answers match.
#[test]
fn whole_range_aggregations_use_summaries_and_overlaps_are_decoded() {
    let d = tempfile::tempdir().unwrap();
    let ws = |hosts: u8, from: i64, to: i64, base: usize| -> Vec<Write> {
        (from..to)
            .flat_map(|t| {
                (0..hosts).map(move |h| Write {
                    host: h,
                    ts: t * STEP,
                    f: Some(base + t as usize % 30),
                    i: Some(base + t as usize % 9),
                    s: false,
                })
            })
            .collect()
    };
    let steps = vec![
        Step::Write(ws(3, 0, 100, 20)),
        Step::Flush,
        Step::Write(ws(3, 100, 200, 20)),
        Step::Flush,
        // Overwrites inside the first part's span: that part's blocks must be decoded.
        Step::Write(ws(1, 50, 60, 3)),
        Step::Flush,
        // Memtable rows inside the second part's span.
        Step::Write(ws(2, 150, 151, 5)),
    ];
    let e = engine(d.path(), &steps);
    let counting = Counting(&e, Cell::new(0));
    for func in ["count", "sum", "min", "max", "mean", "first", "last"] {
        for extra in ["", r#","group_by":["host"]"#, r#","group_by":["dc"]"#] {
            let json = format!(
                r#"{{"group":"g","measure":"m","agg":{{"fn":"{func}"}},"fields":["f","i"]{extra}}}"#
            );
            let q = Query::from_json(json.as_bytes()).unwrap();
            assert_eq!(answer(&counting, &q), answer(&PointsOnly(&e), &q), "{json}");
        }
    }
    // Per query: h1 and h2 in part 1 and h2 in part 2 have no competitor; h0 in parts 1 and 3
    // overlap each other, h0 and h1 in part 2 overlap memtable rows.
    assert_eq!(counting.1.get(), 7 * 3 * 3);
    for (host, whole) in [("h0", 0), ("h1", 1), ("h2", 2)] {
        let before = counting.1.get();
        let json = format!(
            r#"{{"group":"g","measure":"m","agg":{{"fn":"sum"}},"fields":["f"],"where":{{"host":"{host}"}}}}"#
        );
        let q = Query::from_json(json.as_bytes()).unwrap();
        assert_eq!(answer(&counting, &q), answer(&PointsOnly(&e), &q));
        assert_eq!(counting.1.get() - before, whole, "{host}");
    }
    // A range starting inside part 1's blocks: `last` still takes h1's and h2's blocks there
    // from their summaries (their last values lie inside), `sum` must decode them.
    for (func, whole) in [("last", 3), ("first", 1), ("sum", 1)] {
        let before = counting.1.get();
        let json = format!(
            r#"{{"group":"g","measure":"m","agg":{{"fn":"{func}"}},"fields":["f","i"],"from":{},"to":{},"group_by":["host"]}}"#,
            30 * STEP,
            250 * STEP
        );
        let q = Query::from_json(json.as_bytes()).unwrap();
        assert_eq!(answer(&counting, &q), answer(&PointsOnly(&e), &q), "{json}");
        assert_eq!(counting.1.get() - before, whole, "{func}");
    }
}

/// TTL drops whole segments: parts and memtable rows of expired segments are left out the same
/// way with and without summaries, and what is kept still comes from summaries.
#[test]
fn ttl_leaves_out_the_same_points_with_and_without_summaries() {
    let d = tempfile::tempdir().unwrap();
    let mut o = EngineOptions::new(d.path());
    o.background = false;
    o.fsync = FsyncPolicy::Never;
    let e = Engine::open(o).unwrap();
    let settings = |ttl_ns| GroupSettings {
        ttl_ns,
        segment_interval_ns: DAY,
        shards: 1,
        backup_tier: "hot".into(),
    };
    // Written under a long TTL, read under a short one (the group's TTL was lowered).
    e.put_group("g", settings(100 * DAY)).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let hour = DAY / 24;
    // Six days back to now, one point an hour per host: the oldest segments are past the TTL.
    let batch = |from: i64, to: i64| -> Vec<Point> {
        (from..to)
            .flat_map(|k| {
                (0..2).map(move |h| Point {
                    measure: "m".into(),
                    tags: vec![("host".into(), format!("h{h}")), ("dc".into(), "d0".into())],
                    fields: vec![
                        ("f".into(), FieldValue::F64(k as f64 * 0.1)),
                        ("i".into(), FieldValue::I64(k)),
                    ],
                    timestamp: now - (6 * 24 - k) * hour,
                })
            })
            .collect()
    };
    e.write("g", &batch(0, 100)).unwrap();
    e.flush().unwrap();
    e.write("g", &batch(100, 130)).unwrap();
    e.flush().unwrap();
    // Memtable rows in an expired segment and in a live one.
    let mut late = batch(5, 6);
    late.extend(batch(140, 144));
    e.write("g", &late).unwrap();
    e.put_group("g", settings(2 * DAY)).unwrap();
    let counting = Counting(&e, Cell::new(0));
    let mut total = 0;
    for func in ["count", "sum", "min", "max", "mean", "first", "last"] {
        for agg in [
            format!(r#"{{"fn":"{func}"}}"#),
            format!(r#"{{"fn":"{func}","every":{DAY}}}"#),
        ] {
            let json = format!(
                r#"{{"group":"g","measure":"m","agg":{agg},"fields":["f","i"],"group_by":["host"]}}"#
            );
            let q = Query::from_json(json.as_bytes()).unwrap();
            let with = answer(&counting, &q);
            assert_eq!(with, answer(&PointsOnly(&e), &q), "{json}");
            if func == "count" && !json.contains("every") {
                let r = with.unwrap();
                total = r.series[0].values[0][1].as_u64().unwrap();
            }
        }
    }
    // h0 holds 134 distinct timestamps (130 flushed, 4 more in the memtable); those in
    // segments past the TTL are left out, those of the last two days or so are kept.
    assert!((4 + 24..134).contains(&total), "{total}");
    assert!(counting.1.get() > 0);
}
