//! Hostile input against the engine (issue 18): extreme timestamps, failed WAL writes, wide
//! points and field caps.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use strata_engine::model::{MAX_TIMESTAMP, MIN_TIMESTAMP, NANOS_PER_DAY};
use strata_engine::vfs::SimVfs;
use strata_engine::{Column, Engine, EngineOptions, Error, FieldValue, GroupSettings, Point};

/// A group that keeps everything, so points at the ends of the valid range are not expired.
fn forever() -> GroupSettings {
    GroupSettings {
        ttl_ns: i64::MAX,
        segment_interval_ns: 30 * NANOS_PER_DAY,
        ..GroupSettings::default()
    }
}

#[test]
fn timestamps_outside_the_valid_range_are_refused_and_nothing_is_written() {
    let d = tempfile::tempdir().unwrap();
    let e = Engine::open(opts(d.path())).unwrap();
    e.put_group("g", forever()).unwrap();
    for bad in [
        i64::MAX,
        i64::MAX - 1,
        MAX_TIMESTAMP + 1,
        MIN_TIMESTAMP - 1,
        i64::MIN,
    ] {
        let err = e
            .write("g", &[pt("ok", recent(), 1.0), pt("bad", bad, 2.0)])
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{bad}: {err}");
        assert!(err.to_string().contains("valid range"), "{err}");
    }
    assert!(scan_all(&e, "g").is_empty());
}

/// 1748: the oldest a TTL of `i64::MAX` ns (292 years back from now) still keeps. Older valid
/// timestamps are refused as expired, not as out of range.
const OLD: i64 = -7_000_000_000_000_000_000;

#[test]
fn the_ends_of_the_valid_range_flush_merge_and_reopen() {
    let d = tempfile::tempdir().unwrap();
    let e = Engine::open(opts(d.path())).unwrap();
    e.put_group("g", forever()).unwrap();
    let want = vec![
        ("a".to_string(), OLD, 1.0),
        ("a".to_string(), MAX_TIMESTAMP, 2.0),
    ];
    let err = e.write("g", &[pt("a", MIN_TIMESTAMP, 1.0)]).unwrap_err();
    assert!(err.to_string().contains("older than"), "{err}");
    e.write("g", &[pt("a", MAX_TIMESTAMP, 2.0)]).unwrap();
    e.flush().unwrap();
    e.write("g", &[pt("a", OLD, 1.0)]).unwrap();
    e.flush().unwrap();
    e.write("g", &[pt("a", MAX_TIMESTAMP, 2.0)]).unwrap();
    e.flush().unwrap();
    e.compact().unwrap();
    assert_eq!(scan_all(&e, "g"), want);
    e.close().unwrap();
    let e = Engine::open(opts(d.path())).unwrap();
    assert_eq!(scan_all(&e, "g"), want);
}

#[test]
fn a_batch_whose_wal_write_failed_is_never_visible() {
    let vfs = SimVfs::new();
    let mut o = EngineOptions::new("/data");
    o.background = false;
    o.vfs = Arc::new(vfs.clone());
    let e = Engine::open(o).unwrap();
    let t = recent();
    e.write("g", &[pt("acked", t, 1.0)]).unwrap();
    // The disk fills up: the next WAL write fails (500 to the client).
    vfs.cut_now();
    assert!(e.write("g", &[pt("failed", t, 2.0)]).is_err());
    assert_eq!(scan_all(&e, "g"), vec![("acked".to_string(), t, 1.0)]);
    // Nor does a later write make it appear: the engine refuses until reopened.
    assert!(e.write("g", &[pt("later", t, 3.0)]).is_err());
    assert_eq!(scan_all(&e, "g"), vec![("acked".to_string(), t, 1.0)]);
}

fn wide_point(measure: &str, n: usize, ts: i64) -> Point {
    Point {
        measure: measure.into(),
        tags: vec![("host".into(), "a".into())],
        fields: (0..n)
            .map(|i| (format!("f{i:05}"), FieldValue::I64(i as i64)))
            .collect(),
        timestamp: ts,
    }
}

#[test]
fn wide_points_are_written_flushed_and_read_back_whole() {
    let d = tempfile::tempdir().unwrap();
    let mut o = opts(d.path());
    o.max_fields_per_point = 20_000;
    o.max_fields_per_measure = 20_000;
    let e = Engine::open(o).unwrap();
    let t = recent();
    let mut p = wide_point("cpu", 20_000, t);
    e.write("g", std::slice::from_ref(&p)).unwrap();
    // Same fields in another order for the next timestamp: matched by name.
    p.fields.reverse();
    p.timestamp = t + 1;
    e.write("g", &[p]).unwrap();
    let check = |e: &Engine| {
        let r = e.scan(&all("g")).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].timestamps, vec![t, t + 1]);
        assert_eq!(r[0].columns.len(), 20_000);
        let (name, col) = &r[0].columns[12_345];
        assert_eq!(name, "f12345");
        assert_eq!(col, &Column::I64(vec![Some(12_345), Some(12_345)]));
    };
    check(&e);
    e.flush().unwrap();
    check(&e);
}

#[test]
fn field_caps_refuse_wide_points_and_measures() {
    let d = tempfile::tempdir().unwrap();
    let mut o = opts(d.path());
    o.max_fields_per_point = 10;
    o.max_fields_per_measure = 15;
    let e = Engine::open(o).unwrap();
    let t = recent();
    let err = e.write("g", &[wide_point("m", 11, t)]).unwrap_err();
    assert!(err.to_string().contains("max_fields_per_point"), "{err}");
    e.write("g", &[wide_point("m", 10, t)]).unwrap();
    // Ten more fields in two points of one batch: the measure would reach 20 fields.
    let more = |from: usize| Point {
        measure: "m".into(),
        tags: vec![],
        fields: (from..from + 5)
            .map(|i| (format!("g{i}"), FieldValue::F64(1.0)))
            .collect(),
        timestamp: t,
    };
    let err = e.write("g", &[more(0), more(5)]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("max_fields_per_measure") && msg.contains("point 2"),
        "{msg}"
    );
    assert_eq!(e.catalog().groups[0].measures[0].fields.len(), 10);
    e.write("g", &[more(0)]).unwrap();
    assert_eq!(e.catalog().groups[0].measures[0].fields.len(), 15);
}
