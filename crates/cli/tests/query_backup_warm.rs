//! The warm path of `strata query --repo`. `strata agent`: a foreground process holding
//! unlocked repository keys, so a query (and every command that unlocks a repository) runs
//! without the password and without its key derivation — round trip (add, query without
//! password, expiry, remove, stop), a key that does not open the repository, peers of another
//! uid, an agent gone mid-way. Kept manifests: a warm run with `--cache-dir` does not fetch the
//! snapshot's manifest again, yet the snapshot listing stays authoritative.
#![allow(clippy::unwrap_used)]

mod backup_support;
mod query_backup_support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backup_support::{PASSWORD, s};
use query_backup_support::make_groups;

const QUERY: &str = r#"{"group":"g1","measure":"cpu","agg":{"fn":"count"}}"#;

/// `strata` without any password or agent in its environment.
fn bare() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
    for k in ["STRATA_REPO_PASSWORD", "STRATA_AGENT_SOCK", "STRATA_REPO"] {
        c.env_remove(k);
    }
    c
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut c = bare();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    Out {
        ok: o.status.success(),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
}

/// A running `strata agent`; stopped (killed) when dropped.
struct AgentProc {
    child: Child,
    socket: PathBuf,
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(socket: &Path, extra: &[&str]) -> AgentProc {
    let mut c = bare();
    c.args(["agent", "--socket", s(socket)]).args(extra);
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // It prints where it listens once the socket is bound.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains(s(socket)), "{line}");
    let mode = std::fs::metadata(socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode");
    AgentProc {
        child,
        socket: socket.to_path_buf(),
    }
}

struct Repo {
    url: String,
    id: String,
    data: PathBuf,
    _t: tempfile::TempDir,
}

/// An encrypted repository with one backup of a small data directory.
fn repo() -> Repo {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    make_groups(&data, 2);
    let url = s(&t.path().join("repo")).to_string();
    let pw = [("STRATA_REPO_PASSWORD", PASSWORD)];
    let init = run(
        &[
            "repo",
            "init",
            "--repo",
            &url,
            "--kdf-memory-kib",
            "256",
            "--json",
        ],
        &pw,
    );
    assert!(init.ok, "{}", init.stderr);
    let cfg: serde_json::Value = serde_json::from_str(&init.stdout).unwrap();
    let b = run(&["backup", "--repo", &url, "--data-dir", s(&data)], &pw);
    assert!(b.ok, "{}", b.stderr);
    Repo {
        url,
        id: cfg["id"].as_str().unwrap().to_string(),
        data,
        _t: t,
    }
}

fn query(r: &Repo, env: &[(&str, &str)]) -> Out {
    run(
        &["query", "--repo", &r.url, "--snapshot", "latest", QUERY],
        env,
    )
}

#[test]
fn agent_round_trip_add_query_without_password_expire_remove_stop() {
    let r = repo();
    let want = query(&r, &[("STRATA_REPO_PASSWORD", PASSWORD)]);
    assert!(
        want.ok && want.stdout.contains("\"values\""),
        "{}",
        want.stderr
    );
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("agent.sock");
    let agent = start_agent(&sock, &["--lifetime", "1h"]);
    let via = [("STRATA_AGENT_SOCK", s(&sock))];

    // Without a key in the agent and without a password: the repository stays locked.
    let locked = query(&r, &via);
    assert!(!locked.ok);
    assert!(locked.stderr.contains("holds no key"), "{}", locked.stderr);

    let add = run(
        &["agent", "add", "--repo", &r.url, "--socket", s(&sock)],
        &[("STRATA_REPO_PASSWORD", PASSWORD)],
    );
    assert!(add.ok, "{}", add.stderr);
    assert!(add.stdout.contains(&r.id), "{}", add.stdout);

    // No password anywhere: the agent's key answers, identically; and with `--agent`.
    let got = query(&r, &via);
    assert!(got.ok, "{}", got.stderr);
    assert_eq!(got.stdout, want.stdout);
    assert_eq!(got.stderr, "", "no warning expected");
    let flag = run(
        &[
            "query",
            "--repo",
            &r.url,
            "--agent",
            s(&sock),
            "--snapshot",
            "latest",
            QUERY,
        ],
        &[],
    );
    assert!(flag.ok, "{}", flag.stderr);
    assert_eq!(flag.stdout, want.stdout);
    // Other commands unlock through the same path.
    let snaps = run(&["snapshots", "--repo", &r.url], &via);
    assert!(snaps.ok, "{}", snaps.stderr);

    // Listed by id, key file and URL; never the key.
    let list = run(&["agent", "list", "--socket", s(&sock), "--json"], &[]);
    assert!(list.ok, "{}", list.stderr);
    let l: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(l.as_array().unwrap().len(), 1);
    assert_eq!(l[0]["repo_id"], r.id.as_str());
    assert_eq!(l[0]["url"], r.url.as_str());
    assert!(l[0]["key_file"].as_str().unwrap().starts_with("keys/"));
    assert!(l[0].get("kek").is_none());

    // Removed: locked again.
    let rm = run(
        &["agent", "remove", "--repo", &r.url, "--socket", s(&sock)],
        &[],
    );
    assert!(rm.ok && rm.stdout.contains("removed 1"), "{}", rm.stdout);
    assert!(!query(&r, &via).ok);

    // A key added for one second expires.
    let add = run(
        &[
            "agent",
            "add",
            "--repo",
            &r.url,
            "--socket",
            s(&sock),
            "--lifetime",
            "1s",
        ],
        &[("STRATA_REPO_PASSWORD", PASSWORD)],
    );
    assert!(add.ok, "{}", add.stderr);
    assert!(query(&r, &via).ok);
    std::thread::sleep(Duration::from_millis(1600));
    let expired = query(&r, &via);
    assert!(!expired.ok, "the key should have expired");
    assert!(
        expired.stderr.contains("holds no key"),
        "{}",
        expired.stderr
    );

    // Stop: the process exits and its socket is gone.
    let stop = run(&["agent", "stop", "--socket", s(&sock)], &[]);
    assert!(stop.ok, "{}", stop.stderr);
    let mut agent = agent;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if agent.child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the agent did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!agent.socket.exists());
}

#[test]
fn a_key_that_does_not_open_the_repository_is_an_error_that_says_so() {
    let r = repo();
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("agent.sock");
    let _agent = start_agent(&sock, &[]);
    let key_file = std::fs::read_dir(Path::new(&r.url).join("keys"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let wrong = strata_backup::agent::proto::KeyEntry {
        repo_id: r.id.clone(),
        key_file: format!("keys/{}", key_file.to_str().unwrap()),
        kek: [1u8; 32].into(),
    };
    strata_backup::agent::client::add(&sock, wrong, &r.url, None).unwrap();
    // Even with the right password at hand: a wrong key is reported, not silently skipped.
    let out = query(
        &r,
        &[
            ("STRATA_AGENT_SOCK", s(&sock)),
            ("STRATA_REPO_PASSWORD", PASSWORD),
        ],
    );
    assert!(!out.ok);
    assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("does not open key file"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn an_agent_gone_mid_way_falls_back_to_the_password_with_one_warning() {
    let r = repo();
    let want = query(&r, &[("STRATA_REPO_PASSWORD", PASSWORD)]);
    assert!(want.ok);
    let d = tempfile::tempdir().unwrap();

    // Killed: its socket file is left behind, nobody listens.
    let sock = d.path().join("killed.sock");
    let mut agent = start_agent(&sock, &[]);
    let add = run(
        &["agent", "add", "--repo", &r.url, "--socket", s(&sock)],
        &[("STRATA_REPO_PASSWORD", PASSWORD)],
    );
    assert!(add.ok, "{}", add.stderr);
    agent.child.kill().unwrap();
    agent.child.wait().unwrap();
    assert!(sock.exists());
    let env = [
        ("STRATA_AGENT_SOCK", s(&sock)),
        ("STRATA_REPO_PASSWORD", PASSWORD),
    ];
    let out = query(&r, &env);
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(out.stdout, want.stdout);
    assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("cannot be used"), "{}", out.stderr);
    // A new agent takes over the stale socket.
    drop(start_agent(&sock, &[]));

    // One that hangs up half way through its answer.
    let half = d.path().join("half.sock");
    let listener = std::os::unix::net::UnixListener::bind(&half).unwrap();
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut len = [0u8; 4];
        std::io::Read::read_exact(&mut c, &mut len).unwrap();
        c.write_all(&[200, 0, 0, 0, 1, 65]).unwrap();
    });
    let env = [
        ("STRATA_AGENT_SOCK", s(&half)),
        ("STRATA_REPO_PASSWORD", PASSWORD),
    ];
    let out = query(&r, &env);
    server.join().unwrap();
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(out.stdout, want.stdout);
    assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("cannot be used"), "{}", out.stderr);
}

#[test]
fn a_peer_of_another_uid_is_refused_even_through_an_open_socket() {
    let me = rustix::process::getuid();
    if !me.is_root() {
        // Only root can run a peer as another user; the check itself is the same code.
        eprintln!("skipped: needs root to connect as another uid");
        return;
    }
    let r = repo();
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("agent.sock");
    let _agent = start_agent(&sock, &[]);
    let add = run(
        &["agent", "add", "--repo", &r.url, "--socket", s(&sock)],
        &[("STRATA_REPO_PASSWORD", PASSWORD)],
    );
    assert!(add.ok, "{}", add.stderr);
    // Loosen every permission: only SO_PEERCRED stands in the way.
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = {
        use std::os::unix::process::CommandExt;
        let mut c = bare();
        c.args(["agent", "list", "--socket", s(&sock)])
            .uid(65534)
            .gid(65534);
        c.output().unwrap()
    };
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(!o.status.success());
    assert!(err.contains("serves uid 0 only"), "{err}");
    assert!(String::from_utf8(o.stdout).unwrap().is_empty());
    // The agent serves its own user as before.
    let list = run(&["agent", "list", "--socket", s(&sock)], &[]);
    assert!(list.ok && list.stdout.contains(&r.id), "{}", list.stdout);
}

#[test]
fn a_warm_run_reads_its_manifest_from_the_cache_and_the_listing_stays_authoritative() {
    let r = repo();
    let pw = [("STRATA_REPO_PASSWORD", PASSWORD)];
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("cache");
    let q = |env: &[(&str, &str)]| {
        run(
            &[
                "query",
                "--repo",
                &r.url,
                "--snapshot",
                "latest",
                "--cache-dir",
                s(&cache),
                QUERY,
            ],
            env,
        )
    };
    let first = q(&pw);
    assert!(first.ok, "{}", first.stderr);
    let kept = cache.join(&r.id).join("manifests");
    let names: Vec<_> = std::fs::read_dir(&kept).unwrap().flatten().collect();
    assert_eq!(names.len(), 1, "one manifest kept");
    let id = names[0].file_name().to_str().unwrap().to_string();
    let stored = Path::new(&r.url).join("snapshots").join(&id);
    let original = std::fs::read(&stored).unwrap();

    // The repository's copy damaged: the warm run never reads it.
    std::fs::write(&stored, b"garbage").unwrap();
    let warm = q(&pw);
    assert!(warm.ok, "{}", warm.stderr);
    assert_eq!(warm.stdout, first.stdout);

    // The kept copy damaged, the repository's intact: fetched again, same answer.
    std::fs::write(&stored, &original).unwrap();
    let mut k = std::fs::read(names[0].path()).unwrap();
    let at = k.len() / 2;
    k[at] ^= 1;
    std::fs::write(names[0].path(), &k).unwrap();
    let again = q(&pw);
    assert!(again.ok, "{}", again.stderr);
    assert_eq!(again.stdout, first.stdout);

    // A newer snapshot: `latest` is it (the older one picked by its kept header, the new one
    // fetched and kept), then both answer from the cache.
    let b = run(&["backup", "--repo", &r.url, "--data-dir", s(&r.data)], &pw);
    assert!(b.ok, "{}", b.stderr);
    let snapshot_of = |o: &Out| -> String {
        let line = o.stderr.lines().last().unwrap();
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["snapshot"].as_str().unwrap().to_string()
    };
    let stats = |env: &[(&str, &str)]| {
        run(
            &[
                "query",
                "--repo",
                &r.url,
                "--snapshot",
                "latest",
                "--cache-dir",
                s(&cache),
                "--stats",
                QUERY,
            ],
            env,
        )
    };
    let newer = stats(&pw);
    assert!(newer.ok, "{}", newer.stderr);
    let newest = snapshot_of(&newer);
    assert_ne!(newest, id);
    assert_eq!(std::fs::read_dir(&kept).unwrap().count(), 2);
    let warm = stats(&pw);
    assert_eq!(snapshot_of(&warm), newest);

    // Forgotten in the repository: the kept copy does not resurrect it.
    std::fs::remove_file(Path::new(&r.url).join("snapshots").join(&newest)).unwrap();
    let older = stats(&pw);
    assert!(older.ok, "{}", older.stderr);
    assert_eq!(snapshot_of(&older), id);
    std::fs::remove_file(&stored).unwrap();
    let gone = q(&pw);
    assert!(!gone.ok);
    assert!(gone.stderr.contains("not found"), "{}", gone.stderr);
}

#[test]
fn a_key_whose_key_file_is_gone_falls_back_to_the_password_with_one_warning() {
    let r = repo();
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("agent.sock");
    let _agent = start_agent(&sock, &[]);
    let pw = [("STRATA_REPO_PASSWORD", PASSWORD)];
    let add = run(
        &["agent", "add", "--repo", &r.url, "--socket", s(&sock)],
        &pw,
    );
    assert!(add.ok, "{}", add.stderr);
    // The key file replaced (as a password change does): same key, another name.
    let keys = Path::new(&r.url).join("keys");
    let old = std::fs::read_dir(&keys)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::rename(&old, keys.join("00ff00ff00ff00ff")).unwrap();
    let via = [("STRATA_AGENT_SOCK", s(&sock))];
    assert!(!query(&r, &via).ok, "without the password it stays locked");
    let out = query(&r, &[via[0], pw[0]]);
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("key file is gone"), "{}", out.stderr);
}
