//! `strata restore` targets and flags through the real binary: relative data directories,
//! the recovery of an interrupted swap followed by the same restore, `--read-data` without
//! `--dry-run`, and the targets `--force` must refuse.
#![allow(clippy::unwrap_used)]

mod backup_support;

use std::path::Path;

use backup_support::*;

/// A repository with one backup of a small data directory; returns (snapshot id, fingerprint).
fn backed_up(t: &Path) -> (String, (String, usize)) {
    let (data, repo) = (t.join("data"), t.join("repo"));
    init_repo(&repo);
    make_data(&data, 2_000);
    let b = json(&[
        "backup",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&data),
        "--json",
    ]);
    (
        b["snapshot"].as_str().unwrap().to_string(),
        fingerprint(&data),
    )
}

fn run_in(dir: &Path, args: &[&str]) -> std::process::Output {
    strata().current_dir(dir).args(args).output().unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `--data-dir r2` (relative, no `./`) failed at the swap with `I/O error on : No such file or
/// directory` after staging everything: the parent of `r2` is "".
#[test]
fn a_relative_data_dir_restores() {
    let t = tempfile::tempdir().unwrap();
    let (id, fp) = backed_up(t.path());
    let o = run_in(t.path(), &["restore", "--repo", "repo", "--data-dir", "r2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(fingerprint(&t.path().join("r2")), fp);
    let names: Vec<String> = entries(t.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["data", "r2", "repo"], "leftovers beside r2");
    // And over it again, relative, with --force: the old copy is kept beside it.
    let o = run_in(
        t.path(),
        &[
            "restore",
            "--repo",
            "repo",
            "--data-dir",
            "r2",
            "--snapshot",
            &id,
            "--force",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(fingerprint(&t.path().join("r2")), fp);
    assert!(
        entries(t.path())
            .iter()
            .any(|p| p.to_string_lossy().contains("r2.pre-restore-"))
    );
}

/// After the failure above, v1 left a journal with relative paths and a complete staging
/// directory; `restore` into `./r2` then printed "finished the interrupted restore … into ./r2"
/// and failed with "is not empty". Finishing the very restore that was asked for is success.
#[test]
fn a_finished_interrupted_restore_is_not_followed_by_an_error() {
    let t = tempfile::tempdir().unwrap();
    let (id, fp) = backed_up(t.path());
    let staging = format!(".r2.restore-{id}");
    // The complete staging directory and the journal v1 wrote before failing at the swap.
    ok(&[
        "restore",
        "--repo",
        s(&t.path().join("repo")),
        "--data-dir",
        s(&t.path().join(&staging)),
    ]);
    let journal = serde_json::json!({
        "target": "r2", "staging": staging, "rollback": "r2.pre-restore-20261201T000000Z-abcd",
        "snapshot": id,
    });
    std::fs::write(t.path().join(".r2.restore-journal"), journal.to_string()).unwrap();
    let o = run_in(
        t.path(),
        &["restore", "--repo", "repo", "--data-dir", "./r2"],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "finished the interrupted restore of snapshot {id}"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("snapshot {id} is restored into ./r2")),
        "{out}"
    );
    assert!(!out.contains("error"), "{out}");
    assert_eq!(fingerprint(&t.path().join("r2")), fp);
    assert!(!t.path().join(&staging).exists());
    assert!(!t.path().join(".r2.restore-journal").exists());
}

/// `--read-data` was silently ignored without `--dry-run`; it now downloads and checks every
/// object before anything is written.
#[test]
fn read_data_is_honoured_without_dry_run() {
    let t = tempfile::tempdir().unwrap();
    let (_, fp) = backed_up(t.path());
    let (repo, target) = (t.path().join("repo"), t.path().join("r"));
    let v = json(&[
        "restore",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&target),
        "--read-data",
        "--json",
    ]);
    assert_eq!(v["result"]["data_verified"], true, "{v}");
    assert_eq!(fingerprint(&target), fp);

    // Damage the largest object in place (same size): the read check finds it, names what it
    // holds, and nothing is written: no target, no staging directory.
    let mut objects: Vec<_> = walk(&repo.join("data"));
    objects.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let victim = objects.last().unwrap();
    let mut bytes = std::fs::read(victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(victim, bytes).unwrap();
    let fresh = t.path().join("fresh");
    let err = fails(&[
        "restore",
        "--repo",
        s(&repo),
        "--data-dir",
        s(&fresh),
        "--read-data",
    ]);
    assert!(err.contains("damaged repository object data/"), "{err}");
    assert!(err.contains("needed for"), "{err}");
    let names: Vec<_> = entries(t.path());
    assert!(
        !names.iter().any(|p| p.to_string_lossy().contains("fresh")),
        "{names:?}"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Issue 18 item 7: `--force` planned to move `/etc` and `/tmp` aside and moved the repository
/// itself away. Only an empty directory or a Strata data directory is ever replaced.
#[test]
fn force_refuses_dangerous_targets() {
    let t = tempfile::tempdir().unwrap();
    let (_, fp) = backed_up(t.path());
    let repo = t.path().join("repo");
    let r = s(&repo);
    for (target, why) in [
        ("/etc", "no ENGINE file"),
        // (the test's own directory may be below /tmp: then /tmp contains the repository)
        ("/tmp", "refusing"),
        (r, "it is the repository"),
        (s(t.path()), "it contains the repository"),
    ] {
        for dry in [true, false] {
            if !dry && target.starts_with('/') && !target.starts_with(s(t.path())) {
                continue; // never run a real restore at /etc or /tmp, even in a test
            }
            let mut args = vec!["restore", "--repo", r, "--data-dir", target, "--force"];
            if dry {
                args.push("--dry-run");
            }
            let err = fails(&args);
            assert!(err.contains("refusing to restore into"), "{target}: {err}");
            assert!(err.contains(why), "{target}: {err}");
        }
    }
    // Inside the repository, a plain file, a non-empty directory that is not a data dir.
    let inside = repo.join("sub");
    let file = t.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let junk = t.path().join("junk");
    std::fs::create_dir(&junk).unwrap();
    std::fs::write(junk.join("notes.txt"), b"keep me").unwrap();
    for (target, why) in [
        (&inside, "inside the repository"),
        (&file, "not a directory"),
        (&junk, "no ENGINE file"),
    ] {
        let err = fails(&["restore", "--repo", r, "--data-dir", s(target), "--force"]);
        assert!(err.contains(why), "{}: {err}", target.display());
    }
    assert_eq!(std::fs::read(junk.join("notes.txt")).unwrap(), b"keep me");
    assert!(!inside.exists());
    // Nothing was moved: the repository still works, and so do the allowed targets.
    ok(&["verify", "--repo", r, "--all"]);
    let empty = t.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    ok(&["restore", "--repo", r, "--data-dir", s(&empty)]);
    ok(&["restore", "--repo", r, "--data-dir", s(&empty), "--force"]);
    assert_eq!(fingerprint(&empty), fp);
}

/// Golden fixture: a repository written by Strata v1 (`fixtures/repo-v1`, unencrypted, one
/// snapshot whose manifest carries the bare v1 catalog) keeps verifying and restoring, and the
/// restored data answers queries exactly as the v1 data directory did
/// (`fixtures/repo-v1.expected.json`, recorded with the v1 binary).
#[test]
fn a_repository_written_by_v1_restores() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("repo-v1.expected.json")).unwrap())
            .unwrap();
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    copy_tree(&fixtures.join("repo-v1"), &repo);
    let r = s(&repo);
    ok(&["verify", "--repo", r, "--all", "--read-data"]);
    let show = json(&["show", "--repo", r, "latest", "--json"]);
    assert!(show.to_string().contains("golden"), "{show}");
    let target = t.path().join("restored");
    ok(&["restore", "--repo", r, "--data-dir", s(&target)]);
    for q in expected["queries"].as_array().unwrap() {
        let got: serde_json::Value = serde_json::from_str(&ok(&[
            "query",
            "--data-dir",
            s(&target),
            &q["query"].to_string(),
        ]))
        .unwrap();
        assert_eq!(got, q["result"], "query {}", q["query"]);
    }
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
