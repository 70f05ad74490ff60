//! Snapshots pin parts instead of copying them: merges, TTL drops and group deletions defer
//! deleting pinned parts; the pin set survives a restart; release frees what it deferred.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::*;
use strata_engine::backup_api::{FileSource, Snapshot};
use strata_engine::{Engine, GroupSettings};

fn sources(s: &Snapshot) -> Vec<PathBuf> {
    s.files
        .iter()
        .filter_map(|f| match &f.source {
            FileSource::Path(p) => Some(p.clone()),
            FileSource::Inline(_) => None,
        })
        .collect()
}

fn all_exist(paths: &[PathBuf]) -> bool {
    paths.iter().all(|p| p.exists())
}

fn none_exist(paths: &[PathBuf]) -> bool {
    paths.iter().all(|p| !p.exists())
}

/// Three flushed parts in one shard, then a snapshot.
fn three_parts(e: &Engine, t: i64) -> Snapshot {
    for i in 0..3 {
        e.write("g", &[pt("a", t + i, i as f64)]).unwrap();
        e.flush().unwrap();
    }
    e.snapshot().unwrap()
}

#[test]
fn a_snapshot_creates_no_directory_per_part() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    let snap = three_parts(&e, t);
    assert_eq!(snap.parts.len(), 3);
    // Part files are read where they live in the data directory.
    for p in sources(&snap) {
        assert!(p.is_absolute() && p.starts_with(std::path::absolute(d.path()).unwrap()));
    }
    // Only the pin file: no tree, no links (the WAL cut is empty after the flush).
    let names: Vec<String> = std::fs::read_dir(d.path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["PINS".to_string()]);
    e.release_snapshot(&snap.id).unwrap();
    assert!(!d.path().join("snapshots/PINS").exists());
}

#[test]
fn merges_defer_deleting_pinned_parts_until_release() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    let snap = three_parts(&e, t);
    let files = sources(&snap);
    e.compact().unwrap();
    assert_eq!(e.stats().parts, 1);
    assert_eq!(e.pin_status().deferred_parts, 3);
    assert!(all_exist(&files), "a merge deleted a pinned part");
    // The snapshot still reads as of its cut.
    let dir = export(&snap);
    let ro = Engine::open_read_only(dir.path()).unwrap();
    assert_eq!(scan_all(&ro, "g").len(), 3);
    e.release_snapshot(&snap.id).unwrap();
    assert!(none_exist(&files), "release left deferred parts behind");
    assert_eq!(e.pin_status().deferred_parts, 0);
    assert_eq!(scan_all(&e, "g").len(), 3);
}

#[test]
fn two_snapshots_share_a_part_until_the_last_release() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    let a = three_parts(&e, t);
    let b = e.snapshot().unwrap();
    let files = sources(&a);
    e.compact().unwrap();
    e.release_snapshot(&a.id).unwrap();
    assert!(
        all_exist(&files),
        "released while another snapshot pins them"
    );
    e.release_snapshot(&b.id).unwrap();
    assert!(none_exist(&files));
}

#[test]
fn a_restart_keeps_the_files_of_a_live_pin() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    let snap = three_parts(&e, t);
    let files = sources(&snap);
    e.compact().unwrap();
    // The process goes away without releasing (as a server killed while a CLI backs it up).
    drop(e);
    let e = Engine::open(opts(d.path())).unwrap();
    assert!(
        all_exist(&files),
        "open deleted files a live snapshot lists"
    );
    assert_eq!(e.pin_status().snapshots, 1);
    assert_eq!(e.pin_status().deferred_parts, 3);
    assert_eq!(scan_all(&e, "g").len(), 3);
    // It can be released after the restart, by id.
    e.release_snapshot(&snap.id).unwrap();
    assert!(none_exist(&files));
    drop(e);
    let e = Engine::open(opts(d.path())).unwrap();
    assert_eq!(e.pin_status().snapshots, 0);
    assert_eq!(scan_all(&e, "g").len(), 3);
}

#[test]
fn a_damaged_pin_file_is_ignored_and_open_collects_the_garbage() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    let snap = three_parts(&e, t);
    let files = sources(&snap);
    e.compact().unwrap();
    drop(e);
    let pins = d.path().join("snapshots/PINS");
    let mut bytes = std::fs::read(&pins).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    std::fs::write(&pins, bytes).unwrap();
    let e = Engine::open(opts(d.path())).unwrap();
    assert_eq!(e.pin_status().snapshots, 0);
    let part_files: Vec<_> = files
        .iter()
        .filter(|p| p.to_string_lossy().contains("part-"))
        .collect();
    assert!(part_files.iter().all(|p| !p.exists()));
    assert_eq!(scan_all(&e, "g").len(), 3);
}

#[test]
fn ttl_and_group_deletion_keep_pinned_parts_without_republishing_them() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let day = strata_engine::model::NANOS_PER_DAY;
    let long = GroupSettings {
        ttl_ns: 10 * day,
        segment_interval_ns: day,
        shards: 1,
        backup_tier: "hot".into(),
    };
    let e = Engine::open(opts(d.path())).unwrap();
    e.put_group("old", long.clone()).unwrap();
    e.write("old", &[pt("a", t - 5 * day, 1.0)]).unwrap();
    e.write("gone", &[pt("b", t, 2.0)]).unwrap();
    e.flush().unwrap();
    let snap = e.snapshot().unwrap();
    let files = sources(&snap);
    e.put_group(
        "old",
        GroupSettings {
            ttl_ns: 2 * day,
            ..long
        },
    )
    .unwrap();
    e.enforce_ttl().unwrap();
    assert_eq!(e.stats().segments_dropped, 1);
    e.delete_group("gone").unwrap();
    assert!(all_exist(&files));
    assert_eq!(e.pin_status().deferred_parts, 2);
    // A restart with the pin live: the dropped segment and group stay gone.
    drop(e);
    let e = Engine::open(opts(d.path())).unwrap();
    assert!(all_exist(&files));
    assert!(scan_all(&e, "old").is_empty());
    assert!(e.scan(&all("gone")).is_err());
    // The snapshot still holds both as of its cut.
    let dir = export(&snap);
    let ro = Engine::open_read_only(dir.path()).unwrap();
    assert_eq!(scan_all(&ro, "old").len(), 1);
    assert_eq!(scan_all(&ro, "gone").len(), 1);
    drop(ro);
    e.release_snapshot(&snap.id).unwrap();
    assert!(none_exist(&files));
}
