//! The golden data directories under `tests/fixtures/v1/` (WAL v1) and `tests/fixtures/v2/`
//! (WAL v2, commit times in the frames), both with part format v1, and
//! `tests/fixtures/part-v2/` (WAL v2, part format v2 with block summaries) and
//! `tests/fixtures/part-v3/` (part format v3: series keys apart from chunked block lists):
//! every later build must read them.
//!
//! Create a new version's fixture (never regenerate an existing version's):
//! `cargo test -p strata-engine --test golden -- --ignored generate_golden_v2`

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use strata_engine::{Engine, FieldValue, GroupSettings, Point};

const YEAR: i64 = 365 * strata_engine::model::NANOS_PER_DAY;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000_000_000;

fn fixture() -> PathBuf {
    fixture_of("v1")
}

fn fixture_of(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(version)
}

fn points(range: std::ops::Range<i64>) -> Vec<Point> {
    range
        .map(|i| Point {
            measure: if i % 5 == 0 { "mem" } else { "cpu" }.into(),
            tags: vec![
                ("host".into(), format!("host-{}", i % 3)),
                ("region".into(), "eu-west".into()),
            ],
            fields: vec![
                ("usage".into(), FieldValue::F64(i as f64 / 4.0)),
                ("count".into(), FieldValue::I64(i * 1000 - 7)),
                ("up".into(), FieldValue::Bool(i % 2 == 0)),
                ("state".into(), FieldValue::Str(format!("s{}", i % 4))),
            ],
            timestamp: T0 + i * 10_000_000_000,
        })
        .collect()
}

fn settings() -> GroupSettings {
    GroupSettings {
        ttl_ns: 100 * YEAR,
        segment_interval_ns: strata_engine::model::NANOS_PER_DAY,
        shards: 2,
        backup_tier: "cold".into(),
    }
}

#[test]
#[ignore = "writes the committed fixture; run only to create a new format version's fixture"]
fn generate_golden_v2() {
    generate(&fixture_of("v2"));
}

#[test]
#[ignore = "writes the committed fixture; run only to create a new format version's fixture"]
fn generate_golden_part_v2() {
    generate(&fixture_of("part-v2"));
}

#[test]
#[ignore = "writes the committed fixture; run only to create a new format version's fixture"]
fn generate_golden_part_v3() {
    generate(&fixture_of("part-v3"));
}

/// `format_version` of every part's `meta.bin` under `dir`.
fn part_versions(dir: &Path) -> Vec<u64> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("data")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() == "meta.bin" {
                let b = std::fs::read(&p).unwrap();
                let json: serde_json::Value = serde_json::from_slice(&b[16..b.len() - 4]).unwrap();
                out.push(json["format_version"].as_u64().unwrap());
            }
        }
    }
    out
}

/// What `generate_golden_v1` did with the v1 build (kept to document the fixture; this build
/// writes v2 WAL, so it is used for v2 now).
fn generate(dir: &Path) {
    let dir = dir.to_path_buf();
    let _ = std::fs::remove_dir_all(&dir);
    let mut o = common::opts(&dir);
    o.node_id = Some("golden-node".into());
    let e = Engine::open(o).unwrap();
    e.put_group("golden", settings()).unwrap();
    e.write("golden", &points(0..60)).unwrap();
    e.flush().unwrap();
    e.write("golden", &points(60..100)).unwrap();
    e.flush().unwrap();
    // Left in the WAL only: the fixture also covers replay.
    e.write("golden", &points(100..120)).unwrap();
    drop(e);
    for scratch in ["LOCK", "tmp", "snapshots"] {
        let p = dir.join(scratch);
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_dir_all(&p);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn check(e: &Engine) {
    assert_eq!(e.node_id(), "golden-node");
    let cat = e.catalog();
    assert_eq!(cat.groups.len(), 1);
    assert_eq!(cat.groups[0].settings, settings());
    let expected = points(0..120);
    for measure in ["cpu", "mem"] {
        let mut req = common::all("golden");
        req.measure = measure.into();
        let got = e.scan(&req).unwrap();
        let mut n = 0;
        for s in &got {
            for (i, ts) in s.timestamps.iter().enumerate() {
                let p = expected
                    .iter()
                    .find(|p| p.timestamp == *ts && p.measure == measure)
                    .unwrap();
                assert_eq!(s.tags, p.tags);
                for (name, col) in &s.columns {
                    let want = &p.fields.iter().find(|(f, _)| f == name).unwrap().1;
                    let have = match col {
                        strata_engine::Column::F64(v) => FieldValue::F64(v[i].unwrap()),
                        strata_engine::Column::I64(v) => FieldValue::I64(v[i].unwrap()),
                        strata_engine::Column::Bool(v) => FieldValue::Bool(v[i].unwrap()),
                        strata_engine::Column::Str(v) => FieldValue::Str(v[i].clone().unwrap()),
                    };
                    assert_eq!(&have, want);
                }
                n += 1;
            }
        }
        let want = expected.iter().filter(|p| p.measure == measure).count();
        assert_eq!(n, want, "{measure}");
    }
}

#[test]
fn golden_v1_data_dir_still_reads() {
    assert!(fixture().join("ENGINE").exists(), "fixture missing");
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), d.path());
    check(&Engine::open_read_only(d.path()).unwrap());
    let e = Engine::open(common::opts(d.path())).unwrap();
    check(&e);
    assert_eq!(e.stats().parts, 2 * 2);
    // Every part passes full verification against its metadata.
    let s = e.snapshot().unwrap();
    for p in &s.parts {
        strata_engine::snapshot::verify_part(&d.path().join(&p.rel_dir)).unwrap();
    }
}

#[test]
fn golden_v2_data_dir_still_reads() {
    let fx = fixture_of("v2");
    assert!(fx.join("ENGINE").exists(), "fixture missing");
    // The fixture really holds v2 WAL (so this test keeps covering the v2 reader).
    let wal: Vec<_> = std::fs::read_dir(fx.join("wal")).unwrap().collect();
    assert!(!wal.is_empty());
    for w in wal {
        let bytes = std::fs::read(w.unwrap().path()).unwrap();
        assert_eq!(&bytes[8..12], &2u32.to_le_bytes());
    }
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fx, d.path());
    check(&Engine::open_read_only(d.path()).unwrap());
    let e = Engine::open(common::opts(d.path())).unwrap();
    check(&e);
    assert_eq!(e.stats().parts, 2 * 2);
}

#[test]
fn v1_wal_then_v2_wal_replay_in_one_data_dir() {
    // An upgraded v1 data dir: its v1 segment is replayed, new writes go to v2 segments, and a
    // reopen replays both.
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), d.path());
    let extra: Vec<Point> = points(120..130);
    {
        let e = Engine::open(common::opts(d.path())).unwrap();
        e.write("golden", &extra).unwrap();
    }
    let e = Engine::open(common::opts(d.path())).unwrap();
    let mut req = common::all("golden");
    req.measure = "cpu".into();
    let n: usize = e
        .scan(&req)
        .unwrap()
        .iter()
        .map(|s| s.timestamps.len())
        .sum();
    let want = points(0..130).iter().filter(|p| p.measure == "cpu").count();
    assert_eq!(n, want);
}

#[test]
fn golden_part_v2_data_dir_still_reads() {
    let fx = fixture_of("part-v2");
    assert!(fx.join("ENGINE").exists(), "fixture missing");
    // The fixture really holds v2 parts (so this test keeps covering the v2 reader).
    assert_eq!(part_versions(&fx), vec![2; 4]);
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fx, d.path());
    check(&Engine::open_read_only(d.path()).unwrap());
    let e = Engine::open(common::opts(d.path())).unwrap();
    check(&e);
    assert_eq!(e.stats().parts, 2 * 2);
    let s = e.snapshot().unwrap();
    for p in &s.parts {
        strata_engine::snapshot::verify_part(&d.path().join(&p.rel_dir)).unwrap();
    }
}

#[test]
fn golden_part_v3_data_dir_still_reads() {
    let fx = fixture_of("part-v3");
    assert!(fx.join("ENGINE").exists(), "fixture missing");
    // The fixture really holds v3 parts (so this test keeps covering the v3 reader).
    assert_eq!(part_versions(&fx), vec![3; 4]);
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fx, d.path());
    check(&Engine::open_read_only(d.path()).unwrap());
    let e = Engine::open(common::opts(d.path())).unwrap();
    check(&e);
    assert_eq!(e.stats().parts, 2 * 2);
    let s = e.snapshot().unwrap();
    for p in &s.parts {
        strata_engine::snapshot::verify_part(&d.path().join(&p.rel_dir)).unwrap();
    }
}

#[test]
fn v1_parts_are_read_and_merged_into_current_parts() {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), d.path());
    assert_eq!(part_versions(d.path()), vec![1; 4]);
    let e = Engine::open(common::opts(d.path())).unwrap();
    e.flush().unwrap();
    e.compact().unwrap();
    check(&e);
    let versions = part_versions(d.path());
    assert!(!versions.is_empty());
    assert!(versions.iter().all(|&v| v == 3), "{versions:?}");
    drop(e);
    check(&Engine::open_read_only(d.path()).unwrap());
}

/// `restore --format-version 1` needs data the previous release opens: v2 and v3 parts
/// rewritten as v1 (summaries dropped, data.bin untouched) still hold every point and verify.
#[test]
fn v2_parts_rewrite_as_v1_parts() {
    v_parts_rewrite_as_v1_parts("part-v2");
}

#[test]
fn v3_parts_rewrite_as_v1_parts() {
    v_parts_rewrite_as_v1_parts("part-v3");
}

fn v_parts_rewrite_as_v1_parts(fixture: &str) {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fixture_of(fixture), d.path());
    let data_before: Vec<Vec<u8>> = part_files(d.path(), "data.bin");
    let n = strata_engine::rewrite_parts_v1(&strata_engine::vfs::RealVfs, d.path()).unwrap();
    assert_eq!(n, 4);
    assert_eq!(part_versions(d.path()), vec![1; 4]);
    assert_eq!(part_files(d.path(), "data.bin"), data_before);
    // Frame version of index.bin is 1, as the previous release requires.
    for idx in part_files(d.path(), "index.bin") {
        assert_eq!(&idx[8..12], &1u32.to_le_bytes());
    }
    assert_eq!(
        strata_engine::rewrite_parts_v1(&strata_engine::vfs::RealVfs, d.path()).unwrap(),
        0
    );
    check(&Engine::open_read_only(d.path()).unwrap());
    let e = Engine::open(common::opts(d.path())).unwrap();
    check(&e);
    for p in &e.snapshot().unwrap().parts {
        strata_engine::snapshot::verify_part(&d.path().join(&p.rel_dir)).unwrap();
    }
}

/// Contents of every part's `name` under `dir`, sorted by path.
fn part_files(dir: &Path, name: &str) -> Vec<Vec<u8>> {
    let mut paths = Vec::new();
    let mut stack = vec![dir.join("data")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() == name {
                paths.push(p);
            }
        }
    }
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}
