//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use strata_engine::{Engine, EngineOptions, FieldValue, Point, ScanRequest, SeriesData};

pub fn opts(dir: &std::path::Path) -> EngineOptions {
    let mut o = EngineOptions::new(dir);
    o.background = false;
    o
}

pub fn pt(host: &str, ts: i64, v: f64) -> Point {
    Point {
        measure: "cpu".into(),
        tags: vec![("host".into(), host.into())],
        fields: vec![("usage".into(), FieldValue::F64(v))],
        timestamp: ts,
    }
}

pub fn all(group: &str) -> ScanRequest {
    ScanRequest {
        group: group.into(),
        measure: "cpu".into(),
        from: i64::MIN,
        to: i64::MAX,
        matchers: vec![],
        fields: None,
    }
}

/// (host, ts, usage) triples of a scan, sorted.
pub fn triples(data: &[SeriesData]) -> Vec<(String, i64, f64)> {
    let mut out = Vec::new();
    for s in data {
        let host = s
            .tags
            .iter()
            .find(|(k, _)| k == "host")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let Some((_, strata_engine::Column::F64(col))) =
            s.columns.iter().find(|(n, _)| n == "usage")
        else {
            continue;
        };
        for (t, v) in s.timestamps.iter().zip(col) {
            if let Some(v) = v {
                out.push((host.clone(), *t, *v));
            }
        }
    }
    out.sort_by(|a, b| a.partial_cmp(b).unwrap());
    out
}

pub fn scan_all(e: &Engine, group: &str) -> Vec<(String, i64, f64)> {
    triples(&e.scan(&all(group)).unwrap())
}

/// A timestamp inside the TTL window (now minus a few hours), in ns.
pub fn recent() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    now - 3 * 3_600_000_000_000
}

/// The data directory a snapshot describes, written out (files copied from where the pinned
/// snapshot says they are).
pub fn export(snap: &strata_engine::Snapshot) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    strata_engine::backup_api::export_snapshot(snap, d.path()).unwrap();
    d
}
