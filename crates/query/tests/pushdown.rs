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
    // overlap each other, h0 and h1 in part 2 overlap memtable rows. (No range start: `last`
    // visits every block, the answer is stamped with the first point's time.)
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
    // A range starting inside part 1's blocks: `first` takes h2's part 2 block from its summary
    // and `sum` must decode part 1's; `last` takes h2's part 2 block from its summary and
    // leaves part 1's out (later values are known). Cut blocks answered by `last` from their
    // summaries: `last_takes_blocks_cut_by_the_start_from_summaries` below.
    for (func, whole) in [("last", 1), ("first", 1), ("sum", 1)] {
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

/// `last` over a range that starts inside the newest blocks still answers them from their
/// summaries (their last values lie inside).
#[test]
fn last_takes_blocks_cut_by_the_start_from_summaries() {
    let d = tempfile::tempdir().unwrap();
    let ws: Vec<Write> = (0..100)
        .flat_map(|t| {
            (0..3).map(move |h| Write {
                host: h,
                ts: t * STEP,
                f: Some(t as usize % 30),
                i: Some(t as usize % 9),
                s: false,
            })
        })
        .collect();
    let e = engine(d.path(), &[Step::Write(ws), Step::Flush]);
    let counting = Counting(&e, Cell::new(0));
    let json = format!(
        r#"{{"group":"g","measure":"m","agg":{{"fn":"last"}},"fields":["f","i"],"from":{},"to":{},"group_by":["host"]}}"#,
        30 * STEP,
        250 * STEP
    );
    let q = Query::from_json(json.as_bytes()).unwrap();
    assert_eq!(answer(&counting, &q), answer(&PointsOnly(&e), &q), "{json}");
    assert_eq!(counting.1.get(), 3);
}

const SEC: i64 = 1_000_000_000;
const HOUR: i64 = 3600 * SEC;

/// A run of one host's points every 10 s from `start` seconds (hour-scale data, so merged
/// blocks end on hour boundaries), values drawn from the same special floats and integers.
fn run() -> impl Strategy<Value = Vec<Write>> {
    (0u8..3, 0i64..4 * 360, 1usize..1500, any::<usize>()).prop_map(|(host, start, len, seed)| {
        (0..len)
            .map(|k| {
                let r = seed.wrapping_add(k.wrapping_mul(0x9E37_79B9));
                Write {
                    host,
                    ts: (start + k as i64) * 10 * SEC,
                    f: (r % 23 != 0).then_some((r >> 5) % (FLOATS.len() * 4)),
                    i: (r % 17 != 0).then_some((r >> 9) % (INTS.len() * 4)),
                    s: r % 97 == 0,
                }
            })
            .collect()
    })
}

fn hour_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => run().prop_map(Step::Write),
        3 => Just(Step::Flush),
        2 => Just(Step::Compact),
    ]
}

fn hour_query() -> impl Strategy<Value = Q> {
    (
        prop::sample::select(vec!["count", "sum", "min", "max", "mean", "first", "last"]),
        prop::option::of(prop::sample::select(vec![
            60 * SEC,
            7 * 60 * SEC,
            HOUR,
            2 * HOUR,
            DAY,
        ])),
        prop::option::of(-10i64..300),
        prop::option::of(0i64..300),
        prop::sample::select(vec![r#"["f"]"#, r#"["i"]"#, r#"["f","i"]"#, "null"]),
        any::<bool>(),
        prop::option::weighted(0.3, 0u8..3),
    )
        .prop_map(|(func, every, from, to, fields, group_by, host)| Q {
            func,
            every,
            // Minutes, sometimes off the minute by a few seconds.
            from: from.map(|m| m * 60 * SEC + (m % 3) * 7 * SEC),
            to: to.map(|m| m * 60 * SEC + 1),
            fields,
            group_by,
            host,
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("STRATA_PUSHDOWN_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12),
        ..ProptestConfig::default()
    })]

    /// The same property on data spanning hours at 10 s, whose merged blocks end on hour
    /// boundaries, with buckets of minutes, hours and a day.
    #[test]
    fn summaries_of_hour_blocks_never_change_an_answer(
        steps in prop::collection::vec(hour_step(), 1..8),
        queries in prop::collection::vec(hour_query(), 30),
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

/// Merged 10 s data: a max per host in 1 h buckets takes every whole hour from summaries.
#[test]
fn hour_buckets_take_merged_blocks_whole() {
    let d = tempfile::tempdir().unwrap();
    // Three hosts, 00:30 to 05:00 at 10 s, written in two halves and merged.
    let ws = |from: i64, to: i64| -> Vec<Write> {
        (from..to)
            .flat_map(|k| {
                (0..3).map(move |h| Write {
                    host: h,
                    ts: k * 10 * SEC,
                    f: Some(k as usize % 40),
                    i: Some(k as usize % 11),
                    s: false,
                })
            })
            .collect()
    };
    let steps = vec![
        Step::Write(ws(180, 1000)),
        Step::Flush,
        Step::Write(ws(1000, 1800)),
        Step::Flush,
        Step::Compact,
    ];
    let e = engine(d.path(), &steps);
    let counting = Counting(&e, Cell::new(0));
    let json = format!(
        r#"{{"group":"g","measure":"m","agg":{{"fn":"max","every":{HOUR}}},"fields":["f"],"group_by":["host"]}}"#
    );
    let q = Query::from_json(json.as_bytes()).unwrap();
    assert_eq!(answer(&counting, &q), answer(&PointsOnly(&e), &q), "{json}");
    // Blocks per host: 00:30-02:00 (cut at the second boundary: 180 rows at the first), then
    // 02:00-03:00, 03:00-04:00, 04:00-05:00; the first spans two buckets and is decoded.
    assert_eq!(counting.1.get(), 3 * 3);
}
