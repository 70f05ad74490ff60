//! The archive hold: with archiving on, a flush keeps the WAL the archiver has not shipped
//! (up to `archive_max_pending`), records come back with their commit times, the cursor
//! survives a reopen, and past the bound the WAL goes anyway and the LSN jump shows the gap.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata_engine::Engine;
use strata_engine::backup_api::archive::{ArchiveCursor, decode_segment, encode_segment};

fn recent() -> i64 {
    chrono_now() - 60_000_000_000
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn archiving(dir: &std::path::Path, max: u64) -> strata_engine::EngineOptions {
    let mut o = opts(dir);
    o.archive_max_pending = Some(max);
    o
}

#[test]
fn unarchived_wal_outlives_the_flush_and_records_carry_commit_times() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let before = chrono_now();
    let e = Engine::open(archiving(d.path(), 1 << 30)).unwrap();
    assert_eq!(e.archive_cursor(), Some(ArchiveCursor::default()));
    for i in 0..30 {
        e.write("g", &[pt("a", t + i, i as f64)]).unwrap();
    }
    e.flush().unwrap();
    // Everything is in parts, but nothing is archived: the WAL is all still there.
    let tail = e.read_wal_after(0, None, usize::MAX).unwrap();
    assert_eq!(tail.records.len(), 30);
    let lsns: Vec<u64> = tail.records.iter().map(|r| r.lsn).collect();
    assert_eq!(lsns, (1..=30).collect::<Vec<_>>());
    let after = chrono_now();
    let mut prev = 0;
    for r in &tail.records {
        assert!(r.commit_time_ns >= before && r.commit_time_ns <= after);
        assert!(r.commit_time_ns >= prev, "commit times go backwards");
        prev = r.commit_time_ns;
    }
    // Reading on from the returned position gives what came after it, and only that.
    e.write("g", &[pt("a", t + 100, 1.0)]).unwrap();
    let more = e.read_wal_after(30, tail.position, usize::MAX).unwrap();
    assert_eq!(
        more.records.iter().map(|r| r.lsn).collect::<Vec<_>>(),
        vec![31]
    );
    // The archiver says 20 are shipped: the cursor persists, the next flush keeps 21.. only.
    e.set_archive_cursor(ArchiveCursor {
        lsn: 20,
        chain: "0123456789abcdef".into(),
    })
    .unwrap();
    e.flush().unwrap();
    drop(e);
    let e = Engine::open(archiving(d.path(), 1 << 30)).unwrap();
    assert_eq!(e.archive_cursor().unwrap().lsn, 20);
    let tail = e.read_wal_after(20, None, usize::MAX).unwrap();
    assert_eq!(tail.records.first().map(|r| r.lsn), Some(21));
    assert_eq!(tail.records.last().map(|r| r.lsn), Some(31));
    // The records round-trip through a WAL v2 segment (what archive objects hold).
    let seg = encode_segment(0, &tail.records);
    assert_eq!(decode_segment("x", &seg).unwrap(), tail.records);
    let mut cut = seg.clone();
    cut.truncate(seg.len() - 1);
    assert!(
        decode_segment("x", &cut).is_err(),
        "a torn object is an error"
    );
    assert_eq!(scan_all(&e, "g").len(), 31);
}

#[test]
fn past_the_bound_the_wal_goes_and_the_lsn_jump_shows_the_gap() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(archiving(d.path(), 64)).unwrap();
    for i in 0..10 {
        e.write("g", &[pt("a", t + i, 1.0)]).unwrap();
    }
    e.flush().unwrap();
    assert_eq!(e.archive_hold_stats().0, 1, "one gap recorded");
    e.write("g", &[pt("a", t + 50, 1.0)]).unwrap();
    let tail = e.read_wal_after(0, None, usize::MAX).unwrap();
    // Records 1..=10 are gone; the first available one is not cursor + 1.
    assert_eq!(tail.records.first().map(|r| r.lsn), Some(11));
    assert_eq!(tail.durable_lsn, 11);
}

#[test]
fn without_archiving_the_flush_deletes_the_wal_and_the_cursor_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    for i in 0..5 {
        e.write("g", &[pt("a", t + i, 1.0)]).unwrap();
    }
    e.flush().unwrap();
    assert_eq!(e.archive_cursor(), None);
    assert!(
        e.read_wal_after(0, None, usize::MAX)
            .unwrap()
            .records
            .is_empty()
    );
    assert!(e.set_archive_cursor(ArchiveCursor::default()).is_err());
}
