//! The backup commands through the real binary: round trip with another node id, incremental,
//! show/diff/snapshots/verify, wrong password, refusals, dry run, prune.
#![allow(clippy::unwrap_used)]

mod backup_support;

use backup_support::*;

#[test]
fn backup_restore_round_trip_through_the_binary() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    make_data(&data, 20_000);
    let fp = fingerprint(&data);
    assert!(fp.1 >= 20_000);
    init_repo(&repo);
    let r = s(&repo);

    let b1 = json(&[
        "backup",
        "--repo",
        r,
        "--data-dir",
        s(&data),
        "--label",
        "env=test",
        "--json",
    ]);
    let id1 = b1["snapshot"].as_str().unwrap().to_string();
    assert_eq!(b1["kind"], "full");
    // Backups yield the CPU: 10 steps nicer than the caller by default (`--nice`).
    let own = own_nice();
    assert_eq!(b1["nice"].as_i64(), Some((own + 10).min(19)), "{b1}");
    // Nothing new: nothing but the manifest.
    let b2 = json(&["backup", "--repo", r, "--data-dir", s(&data), "--json"]);
    assert_eq!(b2["stats"]["new_objects"], 0, "{b2}");
    assert_eq!(b2["kind"], "incremental");
    let id2 = b2["snapshot"].as_str().unwrap().to_string();

    let list = json(&["snapshots", "--repo", r, "--json"]);
    assert_eq!(list["snapshots"].as_array().unwrap().len(), 2);
    assert_eq!(list["snapshots"][0]["labels"]["env"], "test");
    let show = ok(&["show", "--repo", r, &id1[..6]]);
    assert!(show.contains("encryption  aes-256-gcm"), "{show}");
    assert!(show.contains("metrics:"), "{show}");
    let diff = json(&["diff", "--repo", r, &id1, &id2, "--json"]);
    assert_eq!(diff["total"]["parts_added"], 0);
    ok(&["verify", "--repo", r, "--all", "--read-data"]);

    // Wrong password: one line, nothing changed.
    let before = entries(&repo.join("snapshots"));
    let o = strata()
        .env("STRATA_REPO_PASSWORD", "wrong")
        .args(["backup", "--repo", r, "--data-dir", s(&data)])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "error: wrong repository password"
    );
    assert_eq!(entries(&repo.join("snapshots")), before);

    // Restore onto "another node": other path, other node id.
    let other = t.path().join("node-b");
    ok(&[
        "restore",
        "--repo",
        r,
        "--data-dir",
        s(&other),
        "--snapshot",
        &id1,
        "--node-id",
        "node-b",
    ]);
    assert_eq!(fingerprint(&other), fp);
    let e = open(&other);
    assert_eq!(e.node_id(), "node-b");
    e.close().unwrap();

    // A non-empty target is refused without --force; --dry-run writes nothing.
    let err = fails(&["restore", "--repo", r, "--data-dir", s(&other)]);
    assert!(err.contains("not empty"), "{err}");
    let listing = entries(t.path());
    let dry = ok(&[
        "restore",
        "--repo",
        r,
        "--data-dir",
        s(&other),
        "--force",
        "--dry-run",
        "--read-data",
    ]);
    assert!(dry.contains("nothing was written"), "{dry}");
    assert_eq!(entries(t.path()), listing);
    ok(&["restore", "--repo", r, "--data-dir", s(&other), "--force"]);
    assert_eq!(fingerprint(&other), fp);
    let kept: Vec<_> = entries(t.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("node-b.pre-restore-"))
        .collect();
    assert_eq!(kept.len(), 1, "old data kept for rollback");
    assert_eq!(fingerprint(&kept[0]), fp);

    // A data dir held by a running engine is refused.
    let held = open(&other);
    let err = fails(&["restore", "--repo", r, "--data-dir", s(&other), "--force"]);
    assert!(err.contains("in use"), "{err}");
    drop(held);

    // Prune keeps the newest; the survivor still restores.
    let out = ok(&["prune", "--repo", r, "--keep-last", "1", "--grace", "0s"]);
    assert!(out.contains(&format!("remove {id1}")), "{out}");
    assert!(out.contains(&format!("keep   {id2}")), "{out}");
    ok(&["verify", "--repo", r, "--read-data"]);
    let again = t.path().join("again");
    ok(&["restore", "--repo", r, "--data-dir", s(&again)]);
    assert_eq!(fingerprint(&again), fp);
}

#[test]
fn unencrypted_repository_is_said_so_and_bad_input_is_one_line() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("plain");
    let out = strata()
        .env_remove("STRATA_REPO_PASSWORD")
        .args(["repo", "init", "--repo", s(&repo), "--encryption", "none"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT encrypted"));
    let data = t.path().join("d");
    make_data(&data, 2000);
    ok(&["backup", "--repo", s(&repo), "--data-dir", s(&data)]);
    let show = ok(&["show", "--repo", s(&repo), "latest"]);
    assert!(show.contains("(NOT encrypted)"), "{show}");
    let err = fails(&["repo", "init", "--repo", s(&repo), "--encryption", "none"]);
    assert!(err.contains("already exists"), "{err}");
    let err = fails(&["show", "--repo", s(&t.path().join("nothing")), "latest"]);
    assert!(err.contains("no repository"), "{err}");
    let err = fails(&["prune", "--repo", s(&repo)]);
    assert!(err.contains("no retention rule"), "{err}");
    let err = fails(&["show", "--repo", s(&repo), "ffffffff"]);
    assert!(err.contains("not found"), "{err}");
    let out = strata()
        .args([
            "backup",
            "--repo",
            s(&repo),
            "--data-dir",
            s(&data),
            "--nice",
            "20",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--nice") && err.contains("0..=19"), "{err}");
    let b = json(&[
        "backup",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&data),
        "--nice",
        "0",
        "--json",
    ]);
    let own = own_nice();
    assert_eq!(b["nice"].as_i64(), Some(own), "{b}");
}

/// This test process's nice value (field 19 of `/proc/self/stat`); a backup it starts inherits it.
fn own_nice() -> i64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    stat.rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(16)
        .unwrap()
        .parse()
        .unwrap()
}

/// Flips a byte in the middle of a file.
fn flip(path: &std::path::Path) {
    let mut b = std::fs::read(path).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

#[test]
fn verify_names_each_kind_of_damage() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    make_data(&data, 5000);
    init_repo(&repo);
    let r = s(&repo);
    let b = json(&["backup", "--repo", r, "--data-dir", s(&data), "--json"]);
    let id = b["snapshot"].as_str().unwrap().to_string();
    let show = json(&["show", "--repo", r, &id, "--json"]);
    let files = show["manifest"]["files"].as_array().unwrap().clone();
    let obj = |kind: &str| {
        let f = files
            .iter()
            .filter(|f| f["kind"] == kind)
            .max_by_key(|f| f["size"].as_u64().unwrap())
            .unwrap();
        let o = f["object"].as_str().unwrap().to_string();
        (
            repo.join("data").join(&o[..2]).join(&o),
            f["path"].as_str().unwrap().to_string(),
        )
    };
    // (A WAL object is covered by the backup crate's corruption test: a data dir closed
    // cleanly has no WAL left to back up.)
    {
        let (kind, expect) = ("part", "group 'metrics' measures [cpu]");
        let (path, file) = obj(kind);
        let original = std::fs::read(&path).unwrap();
        flip(&path);
        let o = run(&["verify", "--repo", r, "--read-data"]);
        assert!(!o.status.success());
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(&format!("snapshot {id} file {file}")), "{out}");
        assert!(out.contains(expect), "{out}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&id) && err.lines().count() == 1, "{err}");
        // Restore fails closed.
        let dest = t.path().join(format!("r-{kind}"));
        fails(&["restore", "--repo", r, "--data-dir", s(&dest)]);
        assert!(!dest.exists());
        std::fs::write(&path, original).unwrap();
    }
    let manifest = repo.join("snapshots").join(&id);
    flip(&manifest);
    let o = run(&["verify", "--repo", r]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("DAMAGED snapshots/{id}")));
    let key = entries(&repo.join("keys")).pop().unwrap();
    flip(&key);
    let err = fails(&["verify", "--repo", r]);
    assert!(err.contains("damaged repository object keys/"), "{err}");
}
