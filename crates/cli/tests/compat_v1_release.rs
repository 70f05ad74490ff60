//! N-1 restore: a repository written by the v1 release (the commit in `compat/V1_COMMIT`, WAL
//! format 1) keeps verifying and restoring with this build, and the restored data answers
//! queries exactly as the v1 binary did. The fixture (`compat/fixtures/v1-release/`: an
//! encrypted repository, manifest and engine format 1: a snapshot of a cleanly stopped server
//! and one taken after a SIGKILL, with overwrites, plus the v1 answers) was made by `compat/make-v1-repo-fixture.sh` with the
//! v1 binary; it is never regenerated with a newer one.
#![allow(clippy::unwrap_used)]

mod backup_support;

use std::path::Path;
use std::process::Command;

use backup_support::s;
use serde_json::Value;

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat/fixtures/v1-release")
}

/// Runs this build's `strata` with the fixture's password; asserts success, returns stdout.
fn ok(password: &str, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_strata"))
        .env("STRATA_REPO_PASSWORD", password)
        .env_remove("STRATA_REPO")
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "strata {args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn a_repository_of_the_v1_release_restores_with_the_v1_answers() {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(fixture().join("answers.json")).unwrap()).unwrap();
    let pw = expected["password"].as_str().unwrap();
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    copy_tree(&fixture().join("repo"), &repo);
    let r = s(&repo);
    ok(pw, &["verify", "--repo", r, "--all", "--read-data"]);
    let listed: Value =
        serde_json::from_str(&ok(pw, &["snapshots", "--repo", r, "--json"])).unwrap();
    let snaps = expected["snapshots"].as_array().unwrap();
    assert_eq!(
        listed["snapshots"].as_array().unwrap().len(),
        snaps.len(),
        "{listed}"
    );
    for (i, snap) in snaps.iter().enumerate() {
        let id = snap["snapshot"].as_str().unwrap();
        for version in [None, Some("1")] {
            let dest = t.path().join(format!("restored-{i}-{version:?}"));
            let mut args = vec!["restore", "--repo", r, "--data-dir", s(&dest)];
            args.extend(["--snapshot", id]);
            if let Some(v) = version {
                // Rollback from a v1 repository: written for the previous release again.
                args.extend(["--format-version", v]);
            }
            ok(pw, &args);
            for a in snap["answers"].as_array().unwrap() {
                let q = a["query"].to_string();
                let got: Value =
                    serde_json::from_str(&ok(pw, &["query", "--data-dir", s(&dest), &q])).unwrap();
                assert_eq!(got, a["result"], "snapshot {id} ({version:?}), query {q}");
            }
        }
        // Queried in place, without restoring.
        let a = &snap["answers"][0];
        let q = a["query"].to_string();
        let got: Value =
            serde_json::from_str(&ok(pw, &["query", "--repo", r, "--snapshot", id, &q])).unwrap();
        assert_eq!(got, a["result"], "in place: snapshot {id}, query {q}");
    }
}
