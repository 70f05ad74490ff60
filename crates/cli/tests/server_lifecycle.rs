//! The server as a process: graceful restart keeps every acknowledged write, `strata query`
//! answers the same online and offline, the auth token is enforced, and configuration
//! precedence (flag > env > file > default) holds.
#![allow(clippy::unwrap_used)]

mod server_support;

use serde_json::{Value, json};
use server_support::{Opts, Server, base_secs, only_rows, strata};

#[test]
fn graceful_restart_keeps_all_data_and_cli_query_matches() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let t = base_secs();
    let s = Server::start(&data);
    for batch in 0..20 {
        let body: String = (0..50)
            .map(|i| format!("r,b=b{} v={i}i {}\n", batch % 4, t + batch * 50 + i))
            .collect();
        s.write_ok("r", "s", &body);
    }
    let count = json!({"group": "r", "measure": "r", "agg": {"fn": "count"}, "fields": ["v"]});
    assert_eq!(only_rows(&s.query_ok(&count))[0][1], json!(1000));
    let status = s.stop();
    assert!(status.success(), "exit status {status:?}");

    let s = Server::start(&data);
    assert_eq!(only_rows(&s.query_ok(&count))[0][1], json!(1000));
    let q = json!({"group": "r", "measure": "r", "agg": {"fn": "sum", "every": "5m"},
                   "group_by": ["b"]});
    let (ok, online, err) = strata(&["query", "--server", &s.url, &q.to_string()]);
    assert!(ok, "{err}");
    assert!(s.stop().success());
    let (ok, offline, err) = strata(&[
        "query",
        "--data-dir",
        data.to_str().unwrap(),
        &q.to_string(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(online, offline);
    let v: Value = serde_json::from_str(&online).unwrap();
    assert_eq!(v["series"].as_array().unwrap().len(), 4);
    // A bad query is a one-line error and a non-zero exit, offline too.
    let (ok, _, err) = strata(&["query", "--data-dir", data.to_str().unwrap(), "{}"]);
    assert!(!ok);
    assert!(err.starts_with("error: ") && err.contains("group"), "{err}");
}

#[test]
fn auth_token_is_enforced_on_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(Opts {
        args: &["--auth-token", "s3cret"],
        env: &[],
        data_dir: Some(dir.path()),
        token: None,
    });
    let c = reqwest::blocking::Client::new();
    let line = format!("m v=1 {}", base_secs());
    let write = |auth: Option<&str>| {
        let mut r = c
            .post(format!("{}/api/v1/write?group=a&precision=s", s.url))
            .body(line.clone());
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        r.send().unwrap().status().as_u16()
    };
    assert_eq!(write(None), 401);
    assert_eq!(write(Some("Bearer wrong")), 401);
    assert_eq!(write(Some("Bearer s3cret")), 204);
    assert_eq!(write(Some("Token s3cret")), 204); // InfluxDB 2 clients
    for path in ["/healthz", "/metrics", "/api/v1/groups", "/api/v1/backups"] {
        let r = c.get(format!("{}{path}", s.url)).send().unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path}");
    }
    let r = c
        .post(format!("{}/api/v1/query", s.url))
        .body(r#"{"group":"a","measure":"m"}"#)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // strata query carries the token.
    let q = r#"{"group":"a","measure":"m","agg":{"fn":"count"}}"#;
    let (ok, _, err) = strata(&["query", "--server", &s.url, q]);
    assert!(!ok && err.contains("401"), "{err}");
    let (ok, out, err) = strata(&["query", "--server", &s.url, "--token", "s3cret", q]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(only_rows(&v)[0][1], json!(1));
}

#[test]
fn non_loopback_listen_without_token_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = Server::try_start(Opts {
        args: &["--listen", "0.0.0.0:0"],
        env: &[],
        data_dir: Some(dir.path()),
        token: None,
    })
    .err()
    .expect("server must not start");
    assert!(log.contains("requires an auth token"), "{log}");
}

#[test]
fn config_precedence_flag_over_env_over_file_over_default() {
    let dir = tempfile::tempdir().unwrap();
    let (flag_dir, env_dir, file_dir) = (
        dir.path().join("flag-data"),
        dir.path().join("env-data"),
        dir.path().join("file-data"),
    );
    let file = dir.path().join("strata.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = {:?}\nrepo = \"/from/file\"\nmax_body_bytes = 300\nauth_token = \"file-token\"\n",
            file_dir.to_str().unwrap()
        ),
    )
    .unwrap();
    let s = Server::start_with(Opts {
        args: &[
            "--config",
            file.to_str().unwrap(),
            "--data-dir",
            flag_dir.to_str().unwrap(),
        ],
        env: &[
            ("STRATA_DATA_DIR", env_dir.to_str().unwrap()),
            ("STRATA_REPO", "/from/env"),
            ("STRATA_AUTH_TOKEN", "env-token"),
        ],
        data_dir: None,
        token: Some("env-token"),
    });
    // data_dir: the flag wins over env and file.
    s.write_ok("c", "s", &format!("m v=1 {}", base_secs()));
    assert!(flag_dir.is_dir());
    assert!(!env_dir.exists() && !file_dir.exists());
    // auth_token: env wins over file (the helper sends env-token).
    // max_body_bytes: only in the file, so it applies.
    let (status, _) = s.write("c", "s", &"x".repeat(400));
    assert_eq!(status, 413);
    let log = s.log_text();
    // repo: env over file; fsync: nobody set it, so the default.
    assert!(log.contains("repo: \"/from/env\""), "{log}");
    assert!(log.contains("fsync: \"always\""), "{log}");
    assert!(!log.contains("env-token"), "the token must not be logged");
}
