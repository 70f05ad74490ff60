//! Snapshots: a pinned, complete data directory at one LSN.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use strata_engine::backup_api::open_file;
use strata_engine::{Engine, SnapshotFileKind};

#[test]
fn snapshot_is_an_openable_data_dir_at_its_lsn() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let e = Engine::open(opts(d.path())).unwrap();
    e.write("g", &[pt("a", t, 1.0)]).unwrap();
    e.flush().unwrap();
    e.write("g", &[pt("b", t, 2.0)]).unwrap();
    let snap = e.snapshot().unwrap();
    e.write("g", &[pt("c", t, 3.0)]).unwrap();
    e.flush().unwrap();
    e.compact().unwrap();
    assert_eq!(snap.lsn, 2);
    assert_eq!(snap.node_id, e.node_id());
    // The snapshot flushed the memtable: both writes are in parts, none is left in its WAL.
    assert_eq!(snap.parts.len(), 2);
    assert!(snap.wal.is_empty(), "{:?}", snap.wal);
    assert_eq!(snap.catalog.groups[0].name, "g");
    // Every listed file exists with the recorded size and digest.
    for f in &snap.files {
        assert!(f.rel_path.is_relative());
        let mut bytes = Vec::new();
        open_file(f).unwrap().read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes.len() as u64, f.size, "{:?}", f.rel_path);
        assert_eq!(
            *blake3::hash(&bytes).as_bytes(),
            f.digest,
            "{:?}",
            f.rel_path
        );
    }
    assert!(snap.files.iter().any(|f| f.kind == SnapshotFileKind::Part));
    let expect = vec![("a".to_string(), t, 1.0), ("b".to_string(), t, 2.0)];
    let other = export(&snap);
    let ro = Engine::open_read_only(other.path()).unwrap();
    assert_eq!(scan_all(&ro, "g"), expect);
    drop(ro);
    e.release_snapshot(&snap.id).unwrap();
    assert_eq!(e.pin_status().snapshots, 0);
    assert!(e.release_snapshot(&snap.id).is_err());
    let restored = Engine::open(opts(other.path())).unwrap();
    assert_eq!(scan_all(&restored, "g"), expect);
    restored.write("g", &[pt("d", t, 4.0)]).unwrap();
    restored.flush().unwrap();
    assert_eq!(scan_all(&restored, "g").len(), 3);
    assert_eq!(scan_all(&e, "g").len(), 3);
}

#[test]
fn snapshot_under_concurrent_writes_and_merges_holds_exactly_acknowledged_points() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let mut o = opts(d.path());
    o.fsync = strata_engine::FsyncPolicy::Never;
    let e = Arc::new(Engine::open(o).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<std::sync::Mutex<Vec<(u64, String, i64)>>> = Default::default();
    let mut writers = Vec::new();
    for w in 0..3 {
        let (e, stop, acked) = (e.clone(), stop.clone(), acked.clone());
        writers.push(std::thread::spawn(move || {
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let host = format!("w{w}");
                let lsn = e.write("g", &[pt(&host, t + i, i as f64)]).unwrap();
                acked.lock().unwrap().push((lsn, host, t + i));
                i += 1;
                if i % 50 == 0 {
                    e.flush().unwrap();
                }
            }
        }));
    }
    let merger = {
        let (e, stop) = (e.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                e.compact().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(150));
    let snaps: Vec<_> = (0..3)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            e.snapshot().unwrap()
        })
        .collect();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    merger.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    for s in &snaps {
        let mut expect: Vec<(String, i64)> = acked
            .iter()
            .filter(|(l, _, _)| *l <= s.lsn)
            .map(|(_, h, t)| (h.clone(), *t))
            .collect();
        expect.sort();
        let dir = export(s);
        let ro = Engine::open_read_only(dir.path()).unwrap();
        let got: Vec<(String, i64)> = scan_all(&ro, "g")
            .into_iter()
            .map(|(h, t, _)| (h, t))
            .collect();
        assert!(!expect.is_empty());
        assert_eq!(got, expect, "snapshot at lsn {}", s.lsn);
    }
}
