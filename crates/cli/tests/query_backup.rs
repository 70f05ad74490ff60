//! `strata query --repo`: a backup snapshot answers queries where it lies, exactly as a server
//! restored from it would, reading only what the query needs and writing nothing.
#![allow(clippy::unwrap_used)]

mod backup_support;
mod query_backup_support;

use std::path::Path;

use backup_support::{PASSWORD, s, strata};
use query_backup_support::{make_groups, random_query, s3, tree_state};

const GROUPS: usize = 4;

/// Runs `strata` with `extra` env; returns (success, stdout, stderr).
fn run(args: &[String], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut c = strata();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    (
        o.status.success(),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn ok(a: Vec<String>, env: &[(&str, &str)]) -> String {
    let (good, out, err) = run(&a, env);
    assert!(good, "strata {a:?} failed: {err}");
    out
}

/// Fails with one line of error; returns it.
fn fails(a: Vec<String>, env: &[(&str, &str)]) -> String {
    let (good, _, err) = run(&a, env);
    assert!(!good, "strata {a:?} should fail");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one-line error expected: {err}"
    );
    err.trim().to_string()
}

/// A repository (given by `repo` and `flags`) holding one backup of a [`make_groups`] data
/// directory, and that directory restored from it.
struct Fixture {
    repo: String,
    flags: Vec<String>,
    env: Vec<(&'static str, String)>,
    restored: std::path::PathBuf,
    _t: tempfile::TempDir,
}

impl Fixture {
    fn env(&self) -> Vec<(&str, &str)> {
        self.env.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    fn cmd(&self, a: &[&str]) -> Vec<String> {
        let mut v = args(a);
        v.extend(["--repo".to_string(), self.repo.clone()]);
        v.extend(self.flags.iter().cloned());
        v
    }

    fn query_repo(&self, q: &str, extra: &[&str]) -> (bool, String, String) {
        let mut a = self.cmd(&["query", "--snapshot", "latest"]);
        a.extend(args(extra));
        a.push(q.to_string());
        run(&a, &self.env())
    }

    fn query_restored(&self, q: &str) -> String {
        ok(args(&["query", "--data-dir", s(&self.restored), q]), &[])
    }
}

fn fixture(
    repo: String,
    flags: Vec<String>,
    env: Vec<(&'static str, String)>,
    encrypted: bool,
) -> Fixture {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    make_groups(&data, GROUPS);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut init = args(&["repo", "init", "--repo", &repo, "--kdf-memory-kib", "256"]);
    if !encrypted {
        init.extend(args(&["--encryption", "none"]));
    }
    init.extend(flags.iter().cloned());
    ok(init, &envs);
    let mut b = args(&["backup", "--repo", &repo, "--data-dir", s(&data)]);
    b.extend(flags.iter().cloned());
    ok(b, &envs);
    let restored = t.path().join("restored");
    let mut r = args(&["restore", "--repo", &repo, "--data-dir", s(&restored)]);
    r.extend(flags.iter().cloned());
    ok(r, &envs);
    Fixture {
        repo,
        flags,
        env,
        restored,
        _t: t,
    }
}

fn local_fixture(encrypted: bool) -> (Fixture, tempfile::TempDir) {
    let r = tempfile::tempdir().unwrap();
    let repo = r.path().join("repo");
    (fixture(s(&repo).to_string(), vec![], vec![], encrypted), r)
}

fn s3_fixture(server: &s3::S3, encrypted: bool) -> Fixture {
    fixture(
        format!("s3://{}/strata", s3::BUCKET),
        server.flags(),
        vec![
            ("AWS_ACCESS_KEY_ID", s3::ACCESS.to_string()),
            ("AWS_SECRET_ACCESS_KEY", s3::SECRET.to_string()),
        ],
        encrypted,
    )
}

/// `n` random queries answer the same from the repository as from the restored directory.
fn same_answers(f: &Fixture, seed: u64, n: u64) {
    let mut nonempty = 0;
    for i in 0..n {
        let q = random_query(seed + i, GROUPS).to_string();
        let want = f.query_restored(&q);
        let (good, got, err) = f.query_repo(&q, &[]);
        assert!(good, "query {q} failed on the repository: {err}");
        assert_eq!(got, want, "query {q}");
        if want.contains("\"values\"") {
            nonempty += 1;
        }
    }
    // The queries must actually see data, or equality proves nothing.
    assert!(
        nonempty * 2 > n,
        "only {nonempty} of {n} queries returned data"
    );
}

#[test]
fn random_queries_answer_from_a_local_repository_as_from_the_restored_data() {
    for encrypted in [true, false] {
        let (f, _r) = local_fixture(encrypted);
        same_answers(&f, if encrypted { 100 } else { 200 }, 20);
    }
}

#[test]
fn random_queries_answer_from_an_s3_repository_as_from_the_restored_data_and_write_nothing() {
    for encrypted in [true, false] {
        let server = s3::start();
        let f = s3_fixture(&server, encrypted);
        let before = tree_state(server.dir.path());
        let writes = server.writes();
        same_answers(&f, if encrypted { 300 } else { 400 }, 12);
        assert_eq!(server.writes(), writes, "{:?}", server.counts());
        assert_eq!(tree_state(server.dir.path()), before);
    }
}

/// A group's query reads only its own objects: with every object only other groups use
/// deleted from a copy of the repository, it still answers; the other groups fail, naming a
/// missing object.
#[test]
fn a_group_answers_after_objects_of_other_groups_are_deleted() {
    let (f, r) = local_fixture(true);
    let env = f.env();
    let show: serde_json::Value =
        serde_json::from_str(&ok(f.cmd(&["show", "latest", "--json"]), &env)).unwrap();
    let files = show["manifest"]["files"].as_array().unwrap();
    let keep_group = "g1";
    let mut needed = std::collections::HashSet::new();
    let mut others = std::collections::HashSet::new();
    for file in files {
        let path = file["path"].as_str().unwrap();
        let obj = file["object"].as_str().unwrap().to_string();
        let group = path.strip_prefix("data/").and_then(|p| p.split('/').next());
        match group {
            Some(g) if g != keep_group => {
                others.insert(obj);
            }
            _ => {
                needed.insert(obj);
            }
        }
    }
    let copy = r.path().join("copy");
    copy_dir(Path::new(&f.repo), &copy);
    let mut deleted = 0;
    for obj in others.difference(&needed) {
        std::fs::remove_file(copy.join("data").join(&obj[..2]).join(obj)).unwrap();
        deleted += 1;
    }
    assert!(deleted > 10, "{deleted}");
    let copied = Fixture {
        repo: s(&copy).to_string(),
        flags: vec![],
        env: vec![],
        restored: f.restored.clone(),
        _t: tempfile::tempdir().unwrap(),
    };
    for seed in 0..40 {
        let mut q = random_query(seed, GROUPS);
        q["group"] = keep_group.into();
        let q = q.to_string();
        let (good, got, err) = copied.query_repo(&q, &[]);
        assert!(good, "{q}: {err}");
        assert_eq!(got, f.query_restored(&q), "{q}");
    }
    let err = fails(
        copied.cmd(&[
            "query",
            "--snapshot",
            "latest",
            r#"{"group":"g2","measure":"cpu"}"#,
        ]),
        &[],
    );
    assert!(err.contains("is missing") && err.contains("data/"), "{err}");
}

#[test]
fn a_damaged_object_fails_the_query_naming_it() {
    let (f, _r) = local_fixture(false);
    let show: serde_json::Value =
        serde_json::from_str(&ok(f.cmd(&["show", "latest", "--json"]), &[])).unwrap();
    let file = show["manifest"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            let p = f["path"].as_str().unwrap();
            p.starts_with("data/g0/")
                && p.ends_with("/data.bin")
                && f["size"].as_u64().unwrap() > 64
        })
        .unwrap()
        .clone();
    let obj = file["object"].as_str().unwrap();
    let path = Path::new(&f.repo).join("data").join(&obj[..2]).join(obj);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&path, bytes).unwrap();
    let (good, out, err) = f.query_repo(r#"{"group":"g0","measure":"cpu"}"#, &[]);
    assert!(!good, "a damaged object answered: {out}");
    assert!(err.contains(&format!("data/{}/{obj}", &obj[..2])), "{err}");
    // Another group is unaffected.
    let q = r#"{"group":"g1","measure":"cpu","agg":{"fn":"count"}}"#;
    let (good, got, err) = f.query_repo(q, &[]);
    assert!(good, "{err}");
    assert_eq!(got, f.query_restored(q));
}

#[test]
fn the_cache_makes_the_second_query_local_and_stays_bounded() {
    let (f, r) = local_fixture(true);
    let cache = r.path().join("cache");
    let q = r#"{"group":"g0","measure":"cpu","fields":["usage"],"agg":{"fn":"mean","every":"1h"},"group_by":["host"]}"#;
    let stats = |err: &str| -> serde_json::Value { serde_json::from_str(err.trim()).unwrap() };
    let flags = ["--cache-dir", s(&cache), "--stats"];
    let (good, first, err1) = f.query_repo(q, &flags);
    assert!(good, "{err1}");
    let s1 = stats(&err1);
    let repo_bytes = s1["repository_bytes"].as_u64().unwrap();
    let fetched = s1["fetched"]["bytes_fetched"].as_u64().unwrap();
    assert!(fetched > 0, "{s1}");
    // One group of four: well under half of the repository, and no object of the group is
    // fetched twice (a data file smaller than a frame was read by range for its header, then
    // again whole): at most the stored bytes of the group's files and the metadata.
    assert!(fetched * 100 < repo_bytes * 40, "{s1}");
    let show: serde_json::Value =
        serde_json::from_str(&ok(f.cmd(&["show", "latest", "--json"]), &f.env())).unwrap();
    let group_bytes: u64 = show["manifest"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| {
            let p = x["path"].as_str().unwrap();
            p.starts_with("data/g0/") || !p.starts_with("data/")
        })
        .map(|x| x["stored_size"].as_u64().unwrap())
        .sum();
    assert!(
        fetched <= group_bytes,
        "{s1}: the group's objects hold {group_bytes} bytes"
    );
    let (good, second, err2) = f.query_repo(q, &flags);
    assert!(good, "{err2}");
    assert_eq!(first, second);
    let s2 = stats(&err2);
    assert_eq!(s2["fetched"]["bytes_fetched"], 0, "{s2}");
    assert!(s2["fetched"]["cache_hits"].as_u64().unwrap() > 0, "{s2}");
    assert_eq!(first, f.query_restored(q));
    // A small bound evicts: the cache never keeps more than the bound plus one object.
    let small = r.path().join("small");
    let (good, third, err3) = f.query_repo(q, &["--cache-dir", s(&small), "--cache-size", "64KiB"]);
    assert!(good, "{err3}");
    assert_eq!(third, first);
    let used: u64 = tree_state(&small)
        .iter()
        .filter(|(p, _)| p.contains("/objects/"))
        .map(|(_, v)| v.0)
        .max()
        .unwrap_or(0);
    let total: u64 = tree_state(&small)
        .iter()
        .filter(|(p, _)| p.contains("/objects/"))
        .map(|(_, v)| v.0)
        .sum();
    assert!(total <= 64 * 1024 + used, "cache holds {total} bytes");
}

#[test]
fn bad_input_gets_one_clear_line_and_changes_nothing() {
    let (f, r) = local_fixture(true);
    let repo = Path::new(&f.repo).to_path_buf();
    let before = tree_state(&repo);
    let q = r#"{"group":"g0","measure":"cpu"}"#;
    let query = |extra: &[&str], env: &[(&str, &str)]| -> String {
        let mut a = args(&["query"]);
        a.extend(args(extra));
        a.push(q.to_string());
        fails(a, env)
    };
    let e = query(&["--repo", &f.repo, "--snapshot", "0123456789abcdef"], &[]);
    assert!(e.contains("snapshot 0123456789abcdef not found"), "{e}");
    let e = query(
        &["--repo", &f.repo, "--snapshot", "latest"],
        &[("STRATA_REPO_PASSWORD", "wrong")],
    );
    assert!(e.contains("wrong repository password"), "{e}");
    let missing = r.path().join("nowhere");
    let e = query(&["--repo", s(&missing), "--snapshot", "latest"], &[]);
    assert!(e.contains("no repository at"), "{e}");
    assert!(!missing.exists());
    let e = query(
        &[
            "--repo",
            "s3://bucket/x",
            "--snapshot",
            "latest",
            "--endpoint",
            "http://127.0.0.1:9",
            "--region",
            "us-east-1",
            "--path-style",
            "--allow-http",
        ],
        &[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")],
    );
    assert!(!e.is_empty(), "{e}");
    let file = r.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let e = query(
        &[
            "--repo",
            &f.repo,
            "--snapshot",
            "latest",
            "--cache-dir",
            s(&file.join("cache")),
        ],
        &[],
    );
    assert!(
        e.contains("cache directory") && e.contains("cannot be written"),
        "{e}"
    );
    let e = query(
        &[
            "--repo",
            &f.repo,
            "--snapshot",
            "latest",
            "--at",
            "2026-01-01T00:00:00Z",
        ],
        &[],
    );
    assert!(e.contains("--at or --snapshot, not both"), "{e}");
    // No archive in this repository: no point in time to answer as of.
    let e = query(&["--repo", &f.repo, "--at", "2026-01-01T00:00:00Z"], &[]);
    assert!(e.contains("no point-in-time window"), "{e}");
    let mut a = args(&["query", "--repo", &f.repo, "--snapshot", "latest"]);
    a.push(r#"{"group":"nope","measure":"cpu"}"#.into());
    let e = fails(a, &[]);
    assert!(e.contains("no group 'nope'"), "{e}");
    let mut a = args(&["query", "--repo", &f.repo, "--snapshot", "latest"]);
    a.push(r#"{"group":"g0"}"#.into());
    let e = fails(a, &[]);
    assert!(e.contains("measure"), "{e}");
    let _ = PASSWORD;
    assert_eq!(tree_state(&repo), before, "the repository changed");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}
