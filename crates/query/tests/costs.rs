//! The benchmark's short queries in process, timed by hand (direction only; run a profiler on
//! it): `headline`-like data (hosts with the TSBS tags, ten i64 fields on random walks, 10 h at
//! 10 s), flushed and merged, then a fresh open and, per kind, ten seeded queries: one host's
//! field over 1 h (`single_series_1h`), the mean of one region in 1 min buckets over 1 h
//! (`region_mean_1m_1h`). Off unless `STRATA_QUERY_COSTS=<hosts>`; the data is kept in
//! `STRATA_QUERY_COSTS_DIR` when set (made once, reused):
//!
//! ```sh
//! STRATA_QUERY_COSTS=1000 STRATA_QUERY_COSTS_DIR=/tmp/costs \
//!     cargo nextest run --workspace -E 'binary(costs)' --no-capture
//! ```

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use strata_engine::{Engine, EngineOptions, FieldValue, FsyncPolicy, GroupSettings, Point};

const S: i64 = 1_000_000_000;
const HOUR: i64 = 3600 * S;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000_000_000;
const REGIONS: usize = 9;

fn open(dir: &std::path::Path) -> Engine {
    let mut o = EngineOptions::new(dir);
    o.background = false;
    o.fsync = FsyncPolicy::Never;
    Engine::open(o).unwrap()
}

fn fill(dir: &std::path::Path, hosts: usize) {
    let e = open(dir);
    e.put_group(
        "g",
        GroupSettings {
            ttl_ns: 36500 * strata_engine::model::NANOS_PER_DAY,
            segment_interval_ns: strata_engine::model::NANOS_PER_DAY,
            shards: 2,
            backup_tier: "hot".into(),
        },
    )
    .unwrap();
    let mut walk: Vec<[i64; 10]> = vec![[50; 10]; hosts];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..3600i64 {
        let batch: Vec<Point> = (0..hosts)
            .map(|h| Point {
                measure: "cpu".into(),
                tags: vec![
                    ("hostname".into(), format!("host_{h}")),
                    ("region".into(), format!("region-{}", h % REGIONS)),
                    ("datacenter".into(), format!("dc-{}", h % 27)),
                    ("rack".into(), format!("{}", h % 100)),
                    ("os".into(), format!("Ubuntu{}", 15 + h % 3)),
                    ("arch".into(), format!("x{}", h % 3)),
                    ("team".into(), ["SF", "NYC", "LON", "CHI"][h % 4].into()),
                    ("service".into(), format!("{}", h % 20)),
                    ("service_version".into(), format!("{}", h % 2)),
                    (
                        "service_environment".into(),
                        ["prod", "staging", "test"][h % 3].into(),
                    ),
                ],
                fields: (0..10)
                    .map(|f| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let v = &mut walk[h][f];
                        *v = (*v + (x % 3) as i64 - 1).clamp(0, 100);
                        (format!("usage_{f}"), FieldValue::I64(*v))
                    })
                    .collect(),
                timestamp: T0 + i * 10 * S,
            })
            .collect();
        e.write("g", &batch).unwrap();
        if i % 360 == 359 {
            e.flush().unwrap();
        }
    }
    e.flush().unwrap();
    e.compact().unwrap();
    e.close().unwrap();
}

fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn time(e: &Engine, label: &str, json: &serde_json::Value) -> f64 {
    let t = Instant::now();
    let r = strata_query::run_json(e, json.to_string().as_bytes()).unwrap();
    let ms = t.elapsed().as_secs_f64() * 1e3;
    println!("{label}: {ms:.2} ms ({} series)", r.series.len());
    ms
}

#[test]
fn short_queries_by_hand() {
    let Some(hosts) = std::env::var("STRATA_QUERY_COSTS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("STRATA_QUERY_COSTS_DIR")
        .map_or_else(|| tmp.path().to_path_buf(), std::path::PathBuf::from);
    if !dir.join("ENGINE").exists() {
        let t = Instant::now();
        fill(&dir, hosts);
        println!("filled in {:.1} s", t.elapsed().as_secs_f64());
    }
    let e = open(&dir);
    let mut rng = 7u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut single = Vec::new();
    let mut region = Vec::new();
    for k in 0..10 {
        let from = T0 + next(9 * 60) as i64 * 60 * S;
        let q = serde_json::json!({
            "group": "g", "measure": "cpu",
            "from": rfc3339(from), "to": rfc3339(from + HOUR),
            "where": {"hostname": format!("host_{}", next(hosts as u64))},
            "fields": ["usage_0"],
        });
        single.push(time(&e, &format!("single_series_1h #{k}"), &q));
    }
    for k in 0..10 {
        let from = T0 + next(9 * 60) as i64 * 60 * S;
        let q = serde_json::json!({
            "group": "g", "measure": "cpu",
            "from": rfc3339(from), "to": rfc3339(from + HOUR),
            "where": {"region": format!("region-{}", next(REGIONS as u64))},
            "fields": ["usage_0"],
            "agg": {"fn": "mean", "every": "1m"},
        });
        region.push(time(&e, &format!("region_mean_1m_1h #{k}"), &q));
    }
    for (name, mut v) in [("single_series_1h", single), ("region_mean_1m_1h", region)] {
        v.sort_by(f64::total_cmp);
        println!(
            "{name}: p50 {:.2} ms, max {:.2} ms",
            v[v.len() / 2],
            v[v.len() - 1]
        );
    }
}
