//! End-to-end behaviour of the engine through its public API.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata_engine::{
    Column, Engine, Error, FieldValue, GroupSettings, Point, ScanRequest, TagMatcher,
};

#[test]
fn writes_are_visible_before_and_after_flush_and_reopen() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    e.write("g", &[pt("a", t, 1.0), pt("b", t, 2.0)]).unwrap();
    let expect = vec![("a".to_string(), t, 1.0), ("b".to_string(), t, 2.0)];
    assert_eq!(scan_all(&e, "g"), expect);
    drop(e);
    // WAL replay.
    let e = Engine::open(opts(d.path())).unwrap();
    assert_eq!(scan_all(&e, "g"), expect);
    e.flush().unwrap();
    assert!(e.stats().parts >= 1);
    assert_eq!(scan_all(&e, "g"), expect);
    e.write("g", &[pt("a", t + 1, 3.0)]).unwrap();
    e.close().unwrap();
    let e = Engine::open(opts(d.path())).unwrap();
    assert_eq!(scan_all(&e, "g").len(), 3);
}

#[test]
fn later_writes_overwrite_field_by_field_across_parts_and_memtable() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    let p = |fields: Vec<(&str, FieldValue)>| Point {
        measure: "cpu".into(),
        tags: vec![("host".into(), "a".into())],
        fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        timestamp: t,
    };
    e.write(
        "g",
        &[p(vec![
            ("x", FieldValue::I64(1)),
            ("y", FieldValue::I64(1)),
        ])],
    )
    .unwrap();
    e.flush().unwrap();
    e.write("g", &[p(vec![("x", FieldValue::I64(2))])]).unwrap();
    let check = |e: &Engine| {
        let r = e.scan(&all("g")).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].timestamps, vec![t]);
        assert_eq!(
            r[0].columns,
            vec![
                ("x".to_string(), Column::I64(vec![Some(2)])),
                ("y".to_string(), Column::I64(vec![Some(1)])),
            ]
        );
    };
    check(&e);
    e.flush().unwrap();
    check(&e);
    e.compact().unwrap();
    check(&e);
    drop(e);
    check(&Engine::open(opts(d.path())).unwrap());
}

#[test]
fn tag_matchers_and_projection() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    let mut pts = Vec::new();
    for h in ["a", "b", "c"] {
        let mut p = pt(h, t, 1.0);
        p.tags
            .push(("dc".into(), if h == "c" { "eu" } else { "us" }.into()));
        p.fields.push(("other".into(), FieldValue::Bool(true)));
        pts.push(p);
    }
    e.write("g", &pts).unwrap();
    let re = regex::Regex::new("^[ab]$").unwrap();
    for flush in [false, true] {
        if flush {
            e.flush().unwrap();
        }
        let q = |m: Vec<TagMatcher>| {
            let mut r = all("g");
            r.matchers = m;
            r.fields = Some(vec!["usage".into(), "nope".into()]);
            let res = e.scan(&r).unwrap();
            for s in &res {
                assert_eq!(s.columns.len(), 1, "projection keeps known fields only");
            }
            triples(&res).into_iter().map(|x| x.0).collect::<Vec<_>>()
        };
        assert_eq!(
            q(vec![TagMatcher::Eq("dc".into(), "us".into())]),
            ["a", "b"]
        );
        assert_eq!(q(vec![TagMatcher::NotEq("dc".into(), "us".into())]), ["c"]);
        assert_eq!(
            q(vec![TagMatcher::In(
                "host".into(),
                vec!["a".into(), "c".into()]
            )]),
            ["a", "c"]
        );
        assert_eq!(
            q(vec![TagMatcher::NotIn("host".into(), vec!["a".into()])]),
            ["b", "c"]
        );
        assert_eq!(
            q(vec![TagMatcher::Regex("host".into(), re.clone())]),
            ["a", "b"]
        );
        assert_eq!(
            q(vec![TagMatcher::NotRegex("host".into(), re.clone())]),
            ["c"]
        );
        assert!(q(vec![TagMatcher::Eq("missing".into(), "x".into())]).is_empty());
        assert_eq!(
            q(vec![TagMatcher::Eq("missing".into(), "".into())]).len(),
            3
        );
        let mut r = all("g");
        r.from = t + 1;
        assert!(e.scan(&r).unwrap().is_empty());
    }
}

#[test]
fn field_type_conflict_rejects_the_whole_batch() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    e.write("g", &[pt("a", t, 1.0)]).unwrap();
    let mut bad = pt("b", t, 0.0);
    bad.fields[0].1 = FieldValue::I64(1);
    let err = e.write("g", &[pt("c", t, 5.0), bad]).unwrap_err();
    assert!(matches!(err, Error::FieldTypeConflict { .. }), "{err}");
    let mut within = pt("d", t, 0.0);
    within.fields = vec![("new".into(), FieldValue::Bool(true))];
    let mut within2 = within.clone();
    within2.fields[0].1 = FieldValue::Str("x".into());
    assert!(matches!(
        e.write("g", &[within, within2]),
        Err(Error::FieldTypeConflict { .. })
    ));
    assert_eq!(scan_all(&e, "g").len(), 1);
    let cat = e.catalog();
    assert_eq!(cat.groups[0].measures[0].fields.len(), 1, "{cat:?}");
}

#[test]
fn second_open_is_locked() {
    let d = tempfile::tempdir().unwrap();
    let _e = Engine::open(opts(d.path())).unwrap();
    assert!(matches!(
        Engine::open(opts(d.path())),
        Err(Error::Locked { .. })
    ));
    assert!(matches!(
        strata_engine::set_node_id(d.path(), "x"),
        Err(Error::Locked { .. })
    ));
}

#[test]
fn groups_settings_ttl_and_deletion() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let day = strata_engine::model::NANOS_PER_DAY;
    let e = Engine::open(opts(d.path())).unwrap();
    let s = GroupSettings {
        ttl_ns: 2 * day,
        segment_interval_ns: day,
        shards: 3,
        backup_tier: "hot".into(),
    };
    // Written while the TTL is long, then the TTL shrinks past the old point's segment.
    e.put_group(
        "short",
        GroupSettings {
            ttl_ns: 10 * day,
            ..s.clone()
        },
    )
    .unwrap();
    e.write("short", &[pt("a", t, 1.0), pt("a", t - 5 * day, 2.0)])
        .unwrap();
    e.put_group("short", s.clone()).unwrap();
    // A write already past the TTL is refused whole, not acknowledged and dropped.
    let err = e
        .write("short", &[pt("a", t + 1, 3.0), pt("a", t - 5 * day, 4.0)])
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(ref m) if m.contains("TTL")),
        "{err}"
    );
    // The old point is past the TTL: never visible, and its segment is dropped.
    assert_eq!(scan_all(&e, "short"), vec![("a".to_string(), t, 1.0)]);
    e.flush().unwrap();
    let parts_before = e.stats().parts;
    e.enforce_ttl().unwrap();
    assert_eq!(e.stats().segments_dropped, 1);
    assert_eq!(e.stats().parts, parts_before - 1);
    assert_eq!(scan_all(&e, "short"), vec![("a".to_string(), t, 1.0)]);
    assert_eq!(e.catalog().groups[0].settings, s);
    e.write("other", &[pt("z", t, 9.0)]).unwrap();
    e.delete_group("short").unwrap();
    assert!(matches!(
        e.scan(&all("short")),
        Err(Error::GroupNotFound(_))
    ));
    assert!(!d.path().join("data/short").exists());
    assert!(matches!(
        e.delete_group("short"),
        Err(Error::GroupNotFound(_))
    ));
    // Recreate with another field type: the old schema is gone.
    let mut p = pt("a", t, 0.0);
    p.fields[0].1 = FieldValue::I64(4);
    e.write("short", &[p]).unwrap();
    drop(e);
    let e = Engine::open(opts(d.path())).unwrap();
    let r = e.scan(&all("short")).unwrap();
    assert_eq!(r[0].columns[0].1, Column::I64(vec![Some(4)]));
    assert_eq!(scan_all(&e, "other").len(), 1);
    assert!(e.put_group("bad/name", GroupSettings::default()).is_err());
    assert!(e.write("", &[pt("a", t, 1.0)]).is_err());
}

#[test]
fn merges_bound_part_count_and_keep_data() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    let mut expect = Vec::new();
    for i in 0..12 {
        let p = pt(&format!("h{}", i % 4), t + i, i as f64);
        expect.push((format!("h{}", i % 4), t + i, i as f64));
        e.write("g", &[p]).unwrap();
        e.flush().unwrap();
    }
    expect.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert!(e.stats().parts >= 12);
    e.compact().unwrap();
    assert!(e.stats().parts <= 2, "{:?}", e.stats());
    assert!(e.stats().merges > 0);
    assert_eq!(scan_all(&e, "g"), expect);
    drop(e);
    let e = Engine::open(opts(d.path())).unwrap();
    assert_eq!(scan_all(&e, "g"), expect);
    e.rebuild_index().unwrap();
    assert_eq!(scan_all(&e, "g"), expect);
}

#[test]
fn flipped_byte_in_a_part_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    e.write("g", &[pt("a", t, 1.0)]).unwrap();
    e.flush().unwrap();
    let snap = e.snapshot().unwrap();
    let part = &snap.parts[0];
    let data = d.path().join(&part.rel_dir).join("data.bin");
    e.release_snapshot(&snap.id).unwrap();
    let mut b = std::fs::read(&data).unwrap();
    let n = b.len();
    b[n - 3] ^= 0x55;
    std::fs::write(&data, b).unwrap();
    let err = e.scan(&all("g")).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains(&data.display().to_string()),
        "{err}"
    );
}

#[test]
fn flipped_byte_in_the_wal_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    for i in 0..5 {
        e.write("g", &[pt("a", t + i, 1.0)]).unwrap();
    }
    drop(e);
    let seg = std::fs::read_dir(d.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "wal"))
        .unwrap();
    let mut b = std::fs::read(&seg).unwrap();
    b[60] ^= 0x01;
    std::fs::write(&seg, b).unwrap();
    let err = Engine::open(opts(d.path()))
        .err()
        .expect("corruption detected");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(".wal"), "{err}");
    assert!(Engine::open_read_only(d.path()).is_err());
}

#[test]
fn set_node_id_rewrites_the_engine_file() {
    let d = tempfile::tempdir().unwrap();
    let mut o = opts(d.path());
    o.node_id = Some("node-a".into());
    let e = Engine::open(o).unwrap();
    assert_eq!(e.node_id(), "node-a");
    drop(e);
    strata_engine::set_node_id(d.path(), "node-b").unwrap();
    assert_eq!(Engine::open(opts(d.path())).unwrap().node_id(), "node-b");
}

#[test]
fn read_only_open_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    e.write("g", &[pt("a", t, 1.0)]).unwrap();
    e.flush().unwrap();
    e.write("g", &[pt("b", t, 2.0)]).unwrap();
    let ro = Engine::open_read_only(d.path()).unwrap();
    assert_eq!(scan_all(&ro, "g").len(), 2);
    assert!(ro.write("g", &[pt("c", t, 1.0)]).is_err());
    assert!(Engine::open_read_only(d.path().join("nope")).is_err());
    let _ = ScanRequest::clone(&all("g"));
}

#[test]
fn damaged_manifest_or_checkpoint_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    e.write("g", &[pt("a", t, 1.0)]).unwrap();
    e.flush().unwrap();
    let snap = e.snapshot().unwrap();
    let manifest = snap
        .files
        .iter()
        .find(|f| f.rel_path.to_string_lossy().contains("MANIFEST-"))
        .unwrap()
        .rel_path
        .clone();
    e.release_snapshot(&snap.id).unwrap();
    drop(e);
    for rel in [manifest, "CHECKPOINT".into(), "ENGINE".into()] {
        let path = d.path().join(&rel);
        let orig = std::fs::read(&path).unwrap();
        let mut b = orig.clone();
        b[orig.len() / 2] ^= 0x08;
        std::fs::write(&path, &b).unwrap();
        let err = Engine::open(opts(d.path()))
            .err()
            .expect("corruption detected");
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(
            err.to_string().contains(&*rel.to_string_lossy()),
            "{err} should name {rel:?}"
        );
        std::fs::write(&path, &orig).unwrap();
    }
    assert_eq!(
        scan_all(&Engine::open(opts(d.path())).unwrap(), "g").len(),
        1
    );
}

#[test]
fn interval_and_never_policies_acknowledge_without_fsync_per_write() {
    for policy in ["never", "interval:1h"] {
        let d = tempfile::tempdir().unwrap();
        let t = recent();
        let mut o = opts(d.path());
        o.fsync = policy.parse().unwrap();
        let e = Engine::open(o).unwrap();
        for i in 0..20 {
            e.write("g", &[pt("a", t + i, 1.0)]).unwrap();
        }
        assert_eq!(e.stats().wal_fsyncs, 0, "{policy}");
        drop(e);
        assert_eq!(
            scan_all(&Engine::open(opts(d.path())).unwrap(), "g").len(),
            20
        );
    }
    let d = tempfile::tempdir().unwrap();
    let e = Engine::open(opts(d.path())).unwrap();
    e.write("g", &[pt("a", recent(), 1.0)]).unwrap();
    assert!(e.stats().wal_fsyncs >= 1);
    assert!(
        "interval:bogus"
            .parse::<strata_engine::FsyncPolicy>()
            .is_err()
    );
}

/// Opening loads no part's series table; a scan loads only the tables of parts that hold its
/// measure, and restore-style index rebuilds keep none (memory stays flat as data grows).
#[test]
fn series_tables_load_on_demand() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    for i in 0..3 {
        e.write("g", &[pt("a", t + i, i as f64)]).unwrap();
        e.flush().unwrap();
    }
    let mut mem = pt("a", t, 1.0);
    mem.measure = "mem".into();
    e.write("g", &[mem]).unwrap();
    e.flush().unwrap();
    e.close().unwrap();

    let e = Engine::open(opts(d.path())).unwrap();
    let parts = e.stats().parts;
    assert!(parts >= 4, "{:?}", e.stats());
    assert_eq!(e.stats().series_tables_loaded, 0);
    assert_eq!(scan_all(&e, "g").len(), 3);
    // The part holding only `mem` was not read.
    assert_eq!(e.stats().series_tables_loaded, parts - 1);
    e.rebuild_index().unwrap();
    assert_eq!(e.stats().series_tables_loaded, 0);
    assert_eq!(scan_all(&e, "g").len(), 3);
    // A merge reads its inputs without keeping their tables; the output is new.
    e.compact().unwrap();
    assert_eq!(e.stats().series_tables_loaded, 0);
    assert_eq!(scan_all(&e, "g").len(), 3);
}

/// An aggregation scan of many series may answer them on several threads
/// (`engine/fanout.rs`): the sink still gets them one at a time in series-key order, with the
/// same rows as a plain scan (buckets of 1 ns: no block fits in one, every block is decoded),
/// and a sink that stops, by `keep_going` or by refusing a series, gets no series after that.
#[test]
fn aggregation_scans_of_many_series_hand_them_in_order() {
    use strata_engine::{BlockSummary, SeriesData, SummaryRequest, SummarySink};
    struct Collect {
        got: Vec<SeriesData>,
        /// Stop once this many series are taken: by `keep_going` (true) or `series` (false).
        stop_at: Option<(usize, bool)>,
    }
    impl SummarySink for Collect {
        fn keep_going(&mut self) -> bool {
            !matches!(self.stop_at, Some((n, true)) if self.got.len() >= n)
        }
        fn series(&mut self, s: SeriesData, _: Vec<BlockSummary>) -> bool {
            self.got.push(s);
            !matches!(self.stop_at, Some((n, false)) if self.got.len() >= n)
        }
    }
    let d = tempfile::tempdir().unwrap();
    let e = Engine::open(opts(d.path())).unwrap();
    let t = recent();
    for round in 0..3 {
        let pts: Vec<Point> = (0..60)
            .flat_map(|h| {
                (0..20).map(move |i| pt(&format!("h{h:02}"), t + round * 100 + i, i as f64))
            })
            .collect();
        e.write("g", &pts).unwrap();
        if round < 2 {
            e.flush().unwrap();
        }
    }
    let req = all("g");
    let plain = e.scan(&req).unwrap();
    assert_eq!(plain.len(), 60);
    let buckets = SummaryRequest {
        every: Some(1),
        only: None,
    };
    for stop_at in [None, Some((7, true)), Some((23, false)), Some((0, true))] {
        let mut sink = Collect {
            got: Vec::new(),
            stop_at,
        };
        e.scan_summarized(&req, buckets, &mut sink).unwrap();
        let n = stop_at.map_or(60, |(n, _)| n);
        assert_eq!(sink.got.len(), n, "{stop_at:?}");
        assert_eq!(sink.got[..], plain[..n], "{stop_at:?}");
    }
}
