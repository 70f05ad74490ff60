//! `strata server` finishes a restore that was killed between writing its journal and the swap:
//! it serves the restored data, keeps the old directory as the rollback copy, and removes the
//! journal.
#![allow(clippy::unwrap_used)]

mod server_support;

use serde_json::json;
use server_support::{Server, base_secs};

fn hosts(s: &Server, t: i64) -> Vec<String> {
    let v = s.query_ok(&json!({
        "group": "g", "measure": "m",
        "from": (t - 60) * 1_000_000_000, "to": (t + 60) * 1_000_000_000,
        "group_by": ["host"], "agg": {"fn": "count", "every": "1h"}
    }));
    let mut out: Vec<String> = v["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tags"]["host"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn server_start_finishes_an_interrupted_restore() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("data");
    let staging = dir.path().join(".data.restore-x");
    let rollback = dir.path().join("data.pre-restore-test");
    let t = base_secs();
    for (d, host) in [(&target, "old"), (&staging, "new")] {
        let s = Server::start(d);
        s.write_ok("g", "s", &format!("m,host={host} v=1 {t}\n"));
        assert!(s.stop().success());
    }
    // What `strata restore` leaves when killed right after journaling a complete staging dir.
    let journal = json!({
        "target": target, "staging": staging, "rollback": rollback, "snapshot": "x"
    });
    let jp = dir.path().join(".data.restore-journal");
    std::fs::write(&jp, serde_json::to_vec(&journal).unwrap()).unwrap();

    let s = Server::start(&target);
    assert_eq!(hosts(&s, t), vec!["new".to_string()]);
    assert!(s.stop().success());
    assert!(!jp.exists(), "journal left behind");
    assert!(!staging.exists(), "staging dir left behind");
    let old = Server::start(&rollback);
    assert_eq!(hosts(&old, t), vec!["old".to_string()]);
    assert!(old.stop().success());
}
