//! Careless operator input through the real binary (issue 18, items 5 and 8): a retention
//! policy that keeps nothing, a blank auth token, output piped into `head`.
#![allow(clippy::unwrap_used)]

mod backup_support;

use std::process::Stdio;

use backup_support::*;

fn snapshot_count(repo: &std::path::Path) -> usize {
    json(&["snapshots", "--repo", s(repo), "--json"])["snapshots"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn a_policy_that_keeps_nothing_is_refused_unless_allowed() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    make_data(&data, 500);
    init_repo(&repo);
    for _ in 0..2 {
        ok(&["backup", "--repo", s(&repo), "--data-dir", s(&data)]);
    }
    let before = entries(&repo.join("snapshots"));
    for policy in [
        vec!["--keep-last", "0"],
        vec!["--keep-daily", "0", "--dry-run"],
        vec![
            "--keep-last",
            "0",
            "--keep-hourly",
            "0",
            "--keep-monthly",
            "0",
        ],
    ] {
        let mut args = vec!["prune", "--repo", s(&repo), "--grace", "0s"];
        args.extend(&policy);
        let err = fails(&args);
        assert!(err.contains("--allow-empty"), "{policy:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert_eq!(
        entries(&repo.join("snapshots")),
        before,
        "a refused prune changed the repo"
    );
    assert_eq!(snapshot_count(&repo), 2);

    // A zero next to a rule that keeps something is fine.
    ok(&[
        "prune",
        "--repo",
        s(&repo),
        "--keep-last",
        "0",
        "--keep-daily",
        "1",
    ]);
    assert_eq!(snapshot_count(&repo), 1);

    // Said explicitly, it is done.
    let plan = ok(&[
        "prune",
        "--repo",
        s(&repo),
        "--keep-last",
        "0",
        "--allow-empty",
        "--dry-run",
    ]);
    assert!(plan.contains("remove "), "{plan}");
    assert_eq!(snapshot_count(&repo), 1);
    ok(&[
        "prune",
        "--repo",
        s(&repo),
        "--keep-last",
        "0",
        "--allow-empty",
        "--grace",
        "0s",
    ]);
    assert_eq!(snapshot_count(&repo), 0);
}

#[test]
fn a_blank_auth_token_is_refused() {
    let t = tempfile::tempdir().unwrap();
    for (token, listen) in [(" ", "0.0.0.0:0"), ("", "0.0.0.0:0"), ("\t", "127.0.0.1:0")] {
        let out = strata()
            .env_remove("STRATA_AUTH_TOKEN")
            .args(["server", "--data-dir", s(t.path()), "--listen", listen])
            .args(["--auth-token", token])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "token {token:?} on {listen} accepted"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("auth token is empty"), "{err}");
    }
}

#[test]
fn a_closed_output_pipe_ends_commands_quietly() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    make_data(&data, 200);
    init_repo(&repo);
    ok(&["backup", "--repo", s(&repo), "--data-dir", s(&data)]);
    for args in [
        vec!["snapshots", "--repo", s(&repo)],
        vec!["snapshots", "--repo", s(&repo), "--json"],
        vec!["show", "--repo", s(&repo), "latest"],
        vec!["check", "--data-dir", s(&data)],
    ] {
        // The reader is gone before the command writes its first byte, as with a `head`
        // that has had its lines.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = strata()
            .args(&args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.trim().is_empty(), "{args:?}: {err}");
        assert!(out.status.success(), "{args:?}: {:?}", out.status);
    }
}
