//! `strata restore --skip-damaged` through the binary: one damaged part object; without the
//! flag the restore fails closed, with it everything else is restored, the skipped part is
//! named (human and `--json`) and the exit code is non-zero unless `--accept-damage`.
#![allow(clippy::unwrap_used)]

mod backup_support;

use std::path::{Path, PathBuf};

use backup_support::*;

/// The largest stored object of a local repository (a part's data file here).
fn largest_object(repo: &Path) -> PathBuf {
    let mut best = (0, PathBuf::new());
    let mut stack = vec![repo.join("data")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else if m.len() > best.0 {
                best = (m.len(), e.path());
            }
        }
    }
    best.1
}

#[test]
fn skip_damaged_restores_the_rest_and_names_what_it_skipped() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    init_repo(&repo);
    make_data(&data, 20_000);
    let full = fingerprint(&data);
    ok(&["backup", "--repo", s(&repo), "--data-dir", s(&data)]);
    let obj = largest_object(&repo);
    let mut b = std::fs::read(&obj).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x10;
    std::fs::write(&obj, b).unwrap();

    let target = t.path().join("r");
    let err = fails(&["restore", "--repo", s(&repo), "--data-dir", s(&target)]);
    assert!(err.contains("damaged"), "{err}");
    assert!(!target.exists());

    let o = run(&[
        "restore",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&target),
        "--skip-damaged",
    ]);
    assert!(
        !o.status.success(),
        "skipping damage must not exit 0 unless accepted"
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(out.contains("skipped part data/metrics/"), "{out}");
    assert!(out.contains("series: cpu,host=h"), "{out}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--accept-damage"), "{err}");
    // Everything intact was restored: fewer points than the source, but some.
    let (_, n) = fingerprint(&target);
    assert!(n > 0 && n < full.1, "{n} of {}", full.1);

    let again = t.path().join("r2");
    let v = json(&[
        "restore",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&again),
        "--skip-damaged",
        "--accept-damage",
        "--json",
    ]);
    let skipped = v["result"]["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{v}");
    assert_eq!(skipped[0]["kind"], "part");
    assert_eq!(skipped[0]["groups"][0], "metrics");
    assert!(skipped[0]["min_ts"].as_i64().unwrap() <= skipped[0]["max_ts"].as_i64().unwrap());
    assert_eq!(fingerprint(&again), fingerprint(&target));

    // --accept-damage alone is refused by the argument parser.
    let o = run(&[
        "restore",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&t.path().join("r3")),
        "--accept-damage",
    ]);
    assert!(!o.status.success());
}
