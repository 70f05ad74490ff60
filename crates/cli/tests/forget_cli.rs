//! `strata forget`: one snapshot removed by hand (the web UI's delete), refusing a pinned
//! snapshot, a prefix and an unknown id with one line each and changing nothing then.
#![allow(clippy::unwrap_used)]

mod backup_support;

use backup_support::*;

#[test]
fn forget_removes_one_snapshot_and_refuses_what_it_must() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    make_data(&data, 2_000);
    init_repo(&repo);
    let r = s(&repo);
    let id = |v: serde_json::Value| v["snapshot"].as_str().unwrap().to_string();
    let a = id(json(&[
        "backup",
        "--repo",
        r,
        "--data-dir",
        s(&data),
        "--json",
    ]));
    let b = id(json(&[
        "backup",
        "--repo",
        r,
        "--data-dir",
        s(&data),
        "--full",
        "--json",
    ]));
    let count = || {
        json(&["snapshots", "--repo", r, "--json"])["snapshots"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count(), 2);

    ok(&["pin", "--repo", r, &a]);
    let e = fails(&["forget", "--repo", r, &a]);
    assert!(e.contains("pinned") && e.contains("strata unpin"), "{e}");
    let e = fails(&["forget", "--repo", r, &a[..a.len() - 3]]);
    assert!(e.contains("not found"), "a prefix is not a snapshot: {e}");
    let e = fails(&["forget", "--repo", r, "latest"]);
    assert!(e.contains("not found"), "{e}");
    assert_eq!(count(), 2, "a refused forget changed nothing");

    let out = ok(&["forget", "--repo", r, &b]);
    assert!(out.contains(&b) && out.contains("strata prune"), "{out}");
    assert_eq!(count(), 1);
    ok(&["unpin", "--repo", r, &a]);
    ok(&["forget", "--repo", r, &a]);
    assert_eq!(count(), 0);
    // The data is freed by prune's collection, not by forget: everything a snapshot held is
    // still there until then, and a restore of the gone snapshot fails cleanly.
    let e = fails(&[
        "restore",
        "--repo",
        r,
        "--snapshot",
        &a,
        "--data-dir",
        s(&t.path().join("r")),
        "--dry-run",
    ]);
    assert!(e.contains("not found"), "{e}");
}
