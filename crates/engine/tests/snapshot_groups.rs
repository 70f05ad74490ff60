//! Snapshots restricted to some groups (`strata backup --group`): the data directory they
//! describe holds exactly those groups, WAL tail included.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use strata_engine::Engine;
use strata_engine::backup_api::restrict_snapshot;

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn restricted_snapshot_holds_exactly_its_groups_parts_and_wal() {
    let d = tempfile::tempdir().unwrap();
    let t = recent();
    let mut o = opts(d.path());
    // Keep writes in the WAL so the restriction has WAL frames of both groups to sort.
    o.snapshot_flush = false;
    let e = Engine::open(o).unwrap();
    e.write("hot", &[pt("a", t, 1.0)]).unwrap();
    e.write("cold", &[pt("b", t, 2.0)]).unwrap();
    e.flush().unwrap();
    e.write("hot", &[pt("c", t + 1, 3.0)]).unwrap();
    e.write("cold", &[pt("d", t + 1, 4.0)]).unwrap();
    let snap = e.snapshot().unwrap();
    assert!(!snap.wal.is_empty(), "the test needs a WAL tail");

    let hot = restrict_snapshot(&snap, &set(&["hot"])).unwrap();
    assert_eq!(hot.id, snap.id);
    assert!(hot.parts.iter().all(|p| p.group == "hot"));
    assert!(!hot.parts.is_empty());
    assert_eq!(hot.catalog.groups.len(), 1);
    assert!(
        hot.files
            .iter()
            .all(|f| !f.rel_path.starts_with("data/cold"))
    );
    let dir = export(&hot);
    // The restricted WAL is gap-free: the check a restore runs finds nothing wrong.
    let report = strata_engine::check::check_dir(dir.path()).unwrap();
    assert!(report.ok(), "{:?}", report.damaged);
    let r = Engine::open(opts(dir.path())).unwrap();
    assert_eq!(
        scan_all(&r, "hot"),
        vec![("a".to_string(), t, 1.0), ("c".to_string(), t + 1, 3.0)]
    );
    assert!(r.catalog().groups.iter().all(|g| g.name == "hot"));
    drop(r);

    // Both groups restricted is the whole snapshot's data.
    let both = restrict_snapshot(&snap, &set(&["hot", "cold"])).unwrap();
    let dir = export(&both);
    let r = Engine::open(opts(dir.path())).unwrap();
    assert_eq!(scan_all(&r, "cold").len(), 2);
    assert_eq!(scan_all(&r, "hot").len(), 2);
    drop(r);

    let err = restrict_snapshot(&snap, &set(&["warm"])).unwrap_err();
    assert!(
        err.to_string().contains("group 'warm' does not exist"),
        "{err}"
    );
    assert!(restrict_snapshot(&snap, &set(&[])).is_err());
    e.release_snapshot(&snap.id).unwrap();
}
