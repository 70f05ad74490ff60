//! Reference-model test: random writes, flushes, merges, reopens, TTL drops and snapshots,
//! checked after every step against a plain in-memory model of what scans must return.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use strata_engine::{
    Column, Engine, Error, FieldValue, GroupSettings, Point, ScanRequest, TagMatcher,
};

const DAY: i64 = strata_engine::model::NANOS_PER_DAY;

/// (host, ts) → field → value.
type Model = BTreeMap<(String, i64), BTreeMap<String, FieldValue>>;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn random_value(r: &mut Rng, field: &str) -> FieldValue {
    match field {
        "f" => FieldValue::F64(
            [0.0, -0.0, 1.5, f64::MAX, f64::MIN_POSITIVE, -3.25][r.below(6) as usize],
        ),
        "i" => FieldValue::I64([0, 1, -1, i64::MAX, i64::MIN, 42][r.below(6) as usize]),
        "b" => FieldValue::Bool(r.below(2) == 0),
        _ => {
            FieldValue::Str(["", "x", "héllo", "a longer string value"][r.below(4) as usize].into())
        }
    }
}

fn scan_model(e: &Engine, req: &ScanRequest) -> Model {
    let mut m = Model::new();
    for s in e.scan(req).unwrap() {
        let host = s.tags.iter().find(|(k, _)| k == "host").unwrap().1.clone();
        for (i, ts) in s.timestamps.iter().enumerate() {
            let row = m.entry((host.clone(), *ts)).or_default();
            for (name, col) in &s.columns {
                let v = match col {
                    Column::F64(v) => v[i].map(FieldValue::F64),
                    Column::I64(v) => v[i].map(FieldValue::I64),
                    Column::Bool(v) => v[i].map(FieldValue::Bool),
                    Column::Str(v) => v[i].clone().map(FieldValue::Str),
                };
                if let Some(v) = v {
                    row.insert(name.clone(), v);
                }
            }
        }
    }
    m
}

/// Whether the 1-day segment holding `ts` is wholly older than now - ttl.
fn expired(ts: i64, ttl_days: i64) -> bool {
    ts.div_euclid(DAY) * DAY + DAY < now_ns() - ttl_days * DAY
}

fn visible(model: &Model, host: Option<&str>, ttl_days: i64) -> Model {
    model
        .iter()
        .filter(|((h, ts), _)| !expired(*ts, ttl_days) && host.is_none_or(|x| x == h))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn check(e: &Engine, model: &Model, ttl_days: i64, r: &mut Rng, step: usize) {
    let req = common::all("g");
    assert_eq!(
        scan_model(e, &req),
        visible(model, None, ttl_days),
        "step {step}"
    );
    let host = format!("h{}", r.below(5));
    let mut q = req.clone();
    q.matchers = vec![TagMatcher::Eq("host".into(), host.clone())];
    assert_eq!(
        scan_model(e, &q),
        visible(model, Some(&host), ttl_days),
        "step {step}"
    );
}

fn run(seed: u64, steps: usize) {
    let d = tempfile::tempdir().unwrap();
    let mut r = Rng(seed);
    // Durability is the crash test's business; skip fsyncs to keep this fast.
    let opts = || {
        let mut o = common::opts(d.path());
        o.fsync = strata_engine::FsyncPolicy::Never;
        o
    };
    let mut e = Engine::open(opts()).unwrap();
    let settings = |ttl_days: i64| GroupSettings {
        ttl_ns: ttl_days * DAY,
        segment_interval_ns: DAY,
        shards: 2,
        backup_tier: "hot".into(),
    };
    // The TTL starts at 10 days and shrinks to 2 at a random step, expiring what was written
    // 3–4 days ago; from then on writes that old are refused.
    let mut ttl_days = 10;
    e.put_group("g", settings(ttl_days)).unwrap();
    let today = now_ns().div_euclid(DAY) * DAY;
    let mut model = Model::new();
    for step in 0..steps {
        match r.below(100) {
            0..=59 => {
                let mut batch = Vec::new();
                let mut next = model.clone();
                let mut too_old = false;
                for _ in 0..1 + r.below(20) {
                    // Segments today, yesterday (live) and 3–4 days ago (expired); never the
                    // segment straddling the TTL boundary.
                    let day = [0, 1, 3, 4][r.below(4) as usize];
                    let ts = today - day * DAY + r.below(50) as i64 * 1_000_000;
                    too_old |= expired(ts, ttl_days);
                    let host = format!("h{}", r.below(5));
                    let mut fields = Vec::new();
                    for f in ["f", "i", "b", "s"] {
                        if r.below(2) == 0 {
                            fields.push((f.to_string(), random_value(&mut r, f)));
                        }
                    }
                    if fields.is_empty() {
                        fields.push(("f".into(), FieldValue::F64(7.0)));
                    }
                    let row = next.entry((host.clone(), ts)).or_default();
                    for (k, v) in &fields {
                        row.insert(k.clone(), v.clone());
                    }
                    batch.push(Point {
                        measure: "cpu".into(),
                        tags: vec![("host".into(), host), ("dc".into(), "x".into())],
                        fields,
                        timestamp: ts,
                    });
                }
                if too_old {
                    let err = e.write("g", &batch).unwrap_err();
                    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
                } else {
                    e.write("g", &batch).unwrap();
                    model = next;
                }
            }
            60..=64 => {
                let mut bad = common::pt("h0", today, 0.0);
                bad.fields = vec![("i".into(), FieldValue::Str("no".into()))];
                // Conflicts with the catalog or, on a fresh catalog, within the batch.
                let mut p = common::pt("h1", today + 1, 1.0);
                p.fields = vec![("i".into(), FieldValue::I64(9))];
                let err = e.write("g", &[p, bad]).unwrap_err();
                assert!(matches!(err, Error::FieldTypeConflict { .. }));
            }
            65..=74 => e.flush().unwrap(),
            75..=79 => e.compact().unwrap(),
            80..=84 => {
                drop(e);
                e = Engine::open(opts()).unwrap();
            }
            85..=89 => e.enforce_ttl().unwrap(),
            95..=96 if ttl_days > 2 => {
                ttl_days = 2;
                e.put_group("g", settings(ttl_days)).unwrap();
            }
            90..=94 => {
                let s = e.snapshot().unwrap();
                // Merges after the cut unpublish the snapshot's parts: its pins keep them.
                e.compact().unwrap();
                let dir = common::export(&s);
                let ro = Engine::open_read_only(dir.path()).unwrap();
                check(&ro, &model, ttl_days, &mut r, step);
                drop(ro);
                e.release_snapshot(&s.id).unwrap();
            }
            _ => {}
        }
        check(&e, &model, ttl_days, &mut r, step);
    }
}

#[test]
fn engine_matches_the_reference_model() {
    // More seeds and steps: STRATA_MODEL_SEEDS=n (each seed costs a few seconds of fsyncs).
    let seeds: u64 = std::env::var("STRATA_MODEL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    for seed in 1..=seeds {
        run(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, 150);
    }
}
