//! `strata backup --group G…`: a backup covers exactly the groups asked for (parts, catalog
//! and the WAL tail), records them in its manifest, and restores to just those groups.
#![allow(clippy::unwrap_used)]

mod backup_support;

use std::path::Path;

use backup_support::*;

/// Points per group of a data directory.
fn points_per_group(dir: &Path) -> Vec<(String, usize)> {
    let e = strata_engine::Engine::open_read_only(dir).unwrap();
    let mut out = Vec::new();
    for g in e.catalog().groups {
        let mut n = 0;
        for m in &g.measures {
            for s in e
                .scan(&strata_engine::ScanRequest {
                    group: g.name.clone(),
                    measure: m.name.clone(),
                    from: i64::MIN,
                    to: i64::MAX,
                    matchers: vec![],
                    fields: None,
                })
                .unwrap()
            {
                n += s.timestamps.len();
            }
        }
        out.push((g.name.clone(), n));
    }
    out.sort();
    out
}

#[test]
fn backup_of_some_groups_holds_exactly_those_groups() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    let e = open(&data);
    ingest(&e, "hot", base_ts(), 3_000, 5);
    ingest(&e, "cold", base_ts(), 2_000, 5);
    ingest(&e, "warm", base_ts(), 1_000, 5);
    e.close().unwrap();
    init_repo(&repo);
    let r = s(&repo);

    let b = json(&[
        "backup",
        "--repo",
        r,
        "--data-dir",
        s(&data),
        "--group",
        "hot",
        "--group",
        "warm",
        "--json",
    ]);
    assert_eq!(b["groups"], serde_json::json!(["hot", "warm"]), "{b}");
    let id = b["snapshot"].as_str().unwrap().to_string();
    let list = json(&["snapshots", "--repo", r, "--json"]);
    assert_eq!(
        list["snapshots"][0]["groups"],
        serde_json::json!(["hot", "warm"])
    );
    let show = ok(&["show", "--repo", r, &id]);
    assert!(show.contains("covers      groups hot, warm"), "{show}");
    assert!(!show.contains("cold:"), "{show}");
    ok(&["verify", "--repo", r, "--all", "--read-data"]);

    let out = t.path().join("restored");
    ok(&[
        "restore",
        "--repo",
        r,
        "--data-dir",
        s(&out),
        "--snapshot",
        &id,
    ]);
    assert_eq!(
        points_per_group(&out),
        vec![("hot".to_string(), 3_000), ("warm".to_string(), 1_000)]
    );

    // An unknown group: one line naming it, no snapshot written.
    let err = fails(&[
        "backup",
        "--repo",
        r,
        "--data-dir",
        s(&data),
        "--group",
        "nope",
    ]);
    assert!(err.contains("group 'nope' does not exist"), "{err}");
    let list = json(&["snapshots", "--repo", r, "--json"]);
    assert_eq!(list["snapshots"].as_array().unwrap().len(), 1);

    // Without --group, every group, and no `groups` recorded.
    let b = json(&["backup", "--repo", r, "--data-dir", s(&data), "--json"]);
    assert!(b["groups"].is_null(), "{b}");
}
