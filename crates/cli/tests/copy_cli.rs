//! `strata copy` through the binary: two local repositories with different passwords; the copy
//! restores to the same data, a second copy uploads nothing, `--schedule` picks a schedule's
//! snapshots only.
#![allow(clippy::unwrap_used)]

mod backup_support;

use backup_support::*;

#[test]
fn copy_between_repositories_with_different_keys() {
    let t = tempfile::tempdir().unwrap();
    let (data, a, b) = (
        t.path().join("data"),
        t.path().join("a"),
        t.path().join("b"),
    );
    make_data(&data, 5_000);
    let fp = fingerprint(&data);
    init_repo(&a);
    let o = strata()
        .env("STRATA_REPO_PASSWORD", "other password")
        .args(["repo", "init", "--repo", s(&b), "--kdf-memory-kib", "256"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let b1 = json(&["backup", "--repo", s(&a), "--data-dir", s(&data), "--json"]);
    let id = b1["snapshot"].as_str().unwrap().to_string();
    let copy = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["copy", "--from", s(&a), "--to", s(&b), "--json"];
        args.extend_from_slice(extra);
        let o = strata()
            .env("STRATA_REPO_PASSWORD_TO", "other password")
            .args(&args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let r = copy(&[]);
    assert_eq!(r["copied"], serde_json::json!([id]), "{r}");
    assert!(r["objects_copied"].as_u64().unwrap() > 0);
    let r = copy(&[]);
    assert_eq!(r["objects_copied"], 0, "{r}");
    assert_eq!(r["bytes_uploaded"], 0, "{r}");
    // No snapshot of that schedule: nothing to do.
    let r = copy(&["--schedule", "hourly"]);
    assert_eq!(r["copied"], serde_json::json!([]), "{r}");
    let out = t.path().join("restored");
    let o = strata()
        .env("STRATA_REPO_PASSWORD", "other password")
        .args(["restore", "--repo", s(&b), "--data-dir", s(&out)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(fingerprint(&out), fp);
    let o = strata()
        .env("STRATA_REPO_PASSWORD", "other password")
        .args(["verify", "--repo", s(&b), "--all", "--read-data"])
        .output()
        .unwrap();
    assert!(o.status.success());
}
