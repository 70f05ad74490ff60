//! What a schedule does after its backups, through the real binary and its config file: a
//! copy of every snapshot to a second repository with its own password (`copy_to`), restore
//! drills on their own cron (`drill`) with their jobs, state and metrics, a drill started
//! through the API; and `strata drill` on the command line, passing on a good repository and
//! failing, naming the object, on a damaged one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use server_support::*;

const PASSWORD: &str = "followups test";

fn strata(password: &str) -> std::process::Command {
    let mut c = std::process::Command::new(BIN);
    c.env("STRATA_REPO_PASSWORD", password);
    c
}

fn init_repo(repo: &Path, password: &str) {
    let out = strata(password)
        .args([
            "repo",
            "init",
            "--repo",
            repo.to_str().unwrap(),
            "--kdf-memory-kib",
            "256",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json_of(c: &mut std::process::Command) -> (bool, Value, String) {
    let out = c.output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn get(server: &Server, path: &str) -> Value {
    server
        .request(reqwest::Method::GET, path)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_schedule_copies_its_snapshots_and_drills_them() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo, copy) = (
        t.path().join("data"),
        t.path().join("repo"),
        t.path().join("copy"),
    );
    init_repo(&repo, PASSWORD);
    init_repo(&copy, "the copy's own password");
    let pw = t.path().join("copy.pw");
    std::fs::write(&pw, "the copy's own password\n").unwrap();
    let config = t.path().join("strata.toml");
    std::fs::write(
        &config,
        format!(
            r#"
repo = "{}"

[[schedule]]
name = "often"
cron = "*/2 * * * * *"
drill = "*/3 * * * * *"
copy_to = {{ url = "{}", password_file = "{}" }}
retention = {{ keep_last = 2, grace = "0s" }}
"#,
            repo.display(),
            copy.display(),
            pw.display()
        ),
    )
    .unwrap();
    let server = Server::start_with(Opts {
        args: &["--config", config.to_str().unwrap()],
        env: &[("STRATA_REPO_PASSWORD", PASSWORD)],
        data_dir: Some(&data),
        token: None,
    });
    let s = &get(&server, "/api/v1/schedules")["schedules"][0];
    assert_eq!(s["drill"], "*/3 * * * * *", "{s}");
    assert!(s["copy_to"].as_str().unwrap().ends_with("copy"), "{s}");
    let base = base_secs();
    let mut body = String::new();
    for i in 0..500 {
        body.push_str(&format!("cpu,host=h{} usage={i}.5 {}\n", i % 5, base + i));
    }
    server.write_ok("g", "s", &body);

    // A drill that passed, with its job and metrics.
    wait_for("a passing drill", 40, || {
        get(&server, "/api/v1/schedules")["schedules"][0]["state"]["last_drill_passed"]
            == Value::Bool(true)
    });
    let drills = get(&server, "/api/v1/jobs?kind=drill&schedule=often");
    let j = &drills["jobs"][0];
    assert_eq!(j["state"], "succeeded", "{drills}");
    assert_eq!(j["detail"]["passed"], true, "{j}");
    assert!(
        j["detail"]["measures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["measure"] == "cpu")
    );
    let m = server
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(
        sample(&m, "strata_drill_last_outcome{schedule=\"often\"}"),
        Some(1.0)
    );
    assert!(sample(&m, "strata_drill_runs_total{schedule=\"often\"}").unwrap() >= 1.0);

    // The copy holds the schedule's snapshots, readable with its own password.
    wait_for("a copy job", 30, || {
        get(&server, "/api/v1/jobs?kind=copy&state=succeeded")["jobs"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    // A drill through the API.
    let r = server
        .request(reqwest::Method::POST, "/api/v1/schedules/often/drill")
        .send()
        .unwrap();
    assert!(
        r.status().as_u16() == 202 || r.status().as_u16() == 409,
        "{}",
        r.status()
    );
    // `strata drill --server`: the server drills its own repository and the CLI follows the job.
    let (ok, v, err) = json_of(strata("not needed").args([
        "drill",
        "--server",
        &server.url,
        "--repo",
        "(the server's)",
        "--json",
    ]));
    assert!(ok, "{err}");
    assert_eq!(v["passed"], true, "{v}");
    assert!(server.stop().success());

    let (ok, v, err) = json_of(strata("the copy's own password").args([
        "snapshots",
        "--repo",
        copy.to_str().unwrap(),
        "--json",
    ]));
    assert!(ok, "{err}");
    let snaps = v["snapshots"].as_array().unwrap();
    assert!(
        !snaps.is_empty() && snaps.iter().all(|s| s["schedule"] == "often"),
        "{v}"
    );
    let (ok, v, err) = json_of(strata("the copy's own password").args([
        "drill",
        "--repo",
        copy.to_str().unwrap(),
        "--json",
    ]));
    assert!(ok, "{err}");
    assert_eq!(v["passed"], true);
}

#[test]
fn drill_on_the_command_line_fails_on_a_damaged_object_naming_it() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    init_repo(&repo, PASSWORD);
    {
        let server = Server::start_with(Opts {
            args: &[],
            env: &[],
            data_dir: Some(&data),
            token: None,
        });
        let base = base_secs();
        let mut body = String::new();
        for i in 0..2_000 {
            body.push_str(&format!("mem,host=h{} used={i}i {}\n", i % 9, base + i));
        }
        server.write_ok("g", "s", &body);
        assert!(server.stop().success());
    }
    let (ok, v, err) = json_of(strata(PASSWORD).args([
        "backup",
        "--repo",
        repo.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--json",
    ]));
    assert!(ok, "{err}");
    let id = v["snapshot"].as_str().unwrap().to_string();
    let scratch = t.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let drill = |extra: &[&str]| {
        let mut args = vec![
            "drill",
            "--repo",
            repo.to_str().unwrap(),
            "--scratch",
            scratch.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        strata(PASSWORD).args(&args).output().unwrap()
    };
    let out = drill(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("drill passed") && text.contains("g/mem"),
        "{text}"
    );
    assert!(std::fs::read_dir(&scratch).unwrap().next().is_none());

    // Flip a byte in the largest object of the snapshot.
    let (_, shown, _) =
        json_of(strata(PASSWORD).args(["show", "--repo", repo.to_str().unwrap(), &id, "--json"]));
    let files = shown["manifest"]["files"]
        .as_array()
        .expect("show --json lists files");
    let largest = files
        .iter()
        .max_by_key(|f| f["size"].as_u64().unwrap())
        .unwrap();
    let object = largest["object"].as_str().unwrap();
    let path = repo.join("data").join(&object[..2]).join(object);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x04;
    std::fs::write(&path, bytes).unwrap();
    let out = drill(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains(object), "{text}");
    assert!(
        err.contains("drill of snapshot") && err.contains("failed"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(std::fs::read_dir(&scratch).unwrap().next().is_none());
}
