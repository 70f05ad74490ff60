//! Backup, verify, restore and prune round trips through the real binary against object
//! stores no one here wrote, started on 127.0.0.1 by the test: `moto` in server mode (PyPI) as
//! an S3, and Azurite (npm) for `az://`. Installed by `scripts/install-test-deps.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backup_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backup_support::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tool(rel: &str) -> PathBuf {
    let p = repo_root().join(rel);
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-test-deps.sh",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process, killed when dropped.
struct Proc {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn start(mut cmd: Command, dir: tempfile::TempDir, port: u16) -> Proc {
        let log = dir.path().join("server.log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("server.err")).unwrap())
            .spawn()
            .unwrap();
        let p = Proc {
            child,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "server on port {port} did not start: {}",
                std::fs::read_to_string(&p.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }
}

/// `strata ARGS` with extra environment; asserts success and returns stdout.
fn ok_env(env: &[(&str, String)], args: &[&str]) -> String {
    let mut c = strata();
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.args(args).output().unwrap();
    assert!(
        o.status.success(),
        "strata {args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Full backup, incremental backup, verify with data, restore (fingerprint-equal), prune to
/// the newest, verify, restore again.
fn round_trip(url: &str, env: &[(&str, String)], flags: &[&str]) {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    make_data(&data, 5_000);
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(["--repo", url].iter())
            .chain(flags.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: &[&str]| -> String {
        let a = with(args);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        ok_env(env, &a)
    };
    run(&["repo", "init", "--kdf-memory-kib", "256"]);
    let d = data.to_str().unwrap();
    let b1: serde_json::Value =
        serde_json::from_str(&run(&["backup", "--data-dir", d, "--json"])).unwrap();
    assert_eq!(b1["kind"], "full", "{b1}");
    // More data, then an incremental that uploads only the new parts.
    let e = open(&data);
    ingest(&e, "metrics", base_ts() + 7_200_000_000_000, 1_000, 10);
    e.close().unwrap();
    let fp = fingerprint(&data);
    let b2: serde_json::Value =
        serde_json::from_str(&run(&["backup", "--data-dir", d, "--json"])).unwrap();
    assert_eq!(b2["kind"], "incremental", "{b2}");
    let id1 = b1["snapshot"].as_str().unwrap();
    let id2 = b2["snapshot"].as_str().unwrap();
    run(&["verify", "--all", "--read-data"]);
    let list: serde_json::Value = serde_json::from_str(&run(&["snapshots", "--json"])).unwrap();
    assert_eq!(list["snapshots"].as_array().unwrap().len(), 2, "{list}");

    let target = t.path().join("restored");
    run(&["restore", "--data-dir", target.to_str().unwrap()]);
    assert_eq!(fingerprint(&target), fp);

    let out = run(&["prune", "--keep-last", "1", "--grace", "0s"]);
    assert!(out.contains(&format!("remove {id1}")), "{out}");
    assert!(out.contains(&format!("keep   {id2}")), "{out}");
    run(&["verify", "--all", "--read-data"]);
    let again = t.path().join("again");
    run(&["restore", "--data-dir", again.to_str().unwrap()]);
    assert_eq!(fingerprint(&again), fp);
}

#[test]
fn round_trip_against_moto_s3() {
    let port = free_port();
    let mut cmd = Command::new(tool(".venv-tests/bin/moto_server"));
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let _moto = Proc::start(cmd, tempfile::tempdir().unwrap(), port);
    let endpoint = format!("http://127.0.0.1:{port}");
    // moto starts empty: make the bucket (moto does not check signatures by default).
    let r = reqwest::blocking::Client::new()
        .put(format!("{endpoint}/backups"))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "create bucket: {}", r.status());
    let env = [
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ];
    round_trip(
        "s3://backups/strata/repo",
        &env,
        &["--endpoint", &endpoint, "--path-style", "--allow-http"],
    );
}

#[test]
fn round_trip_against_azurite() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(tool(".node-tests/node_modules/.bin/azurite-blob"));
    cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .arg("--location")
        .arg(dir.path())
        .args(["--silent", "--skipApiVersionCheck"]);
    let _azurite = Proc::start(cmd, dir, port);
    let blob = format!("http://127.0.0.1:{port}/devstoreaccount1");
    let made = Command::new("python3")
        .arg(repo_root().join("crates/cli/tests/clients/azurite_container.py"))
        .args([&blob, "backups"])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "create container: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let env = [
        ("AZURE_STORAGE_USE_EMULATOR", "true".to_string()),
        (
            "AZURITE_BLOB_STORAGE_URL",
            format!("http://127.0.0.1:{port}"),
        ),
    ];
    round_trip("az://backups/strata/repo", &env, &["--allow-http"]);
}
