//! The backup seam through the real binary: `repo init` that fails leaves nothing, every error
//! of the HTTP API is JSON, a backup job accepts a JSON body without `Content-Type`, and a
//! server backup job honours the repository settings of its config file (an S3 endpoint), and
//! `backup --server`, which takes the snapshot while the key is derived, releases it when the
//! repository does not open.
#![allow(clippy::unwrap_used)]

mod backup_support;
mod query_backup_support;
#[path = "server_support/mod.rs"]
mod server_support;

use std::time::Duration;

use backup_support::{PASSWORD, init_repo, s, strata};
use query_backup_support::s3;
use reqwest::Method as M;
use server_support::{Opts, Server, base_secs};

#[test]
fn repo_init_encrypted_without_a_password_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("new-repo");
    let o = strata()
        .env_remove("STRATA_REPO_PASSWORD")
        .args([
            "repo",
            "init",
            "--repo",
            s(&repo),
            "--encryption",
            "aes-256-gcm",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("needs a password"), "{err}");
    assert!(!err.contains("is encrypted"), "{err}");
    assert!(!repo.exists(), "a failed init left {}", repo.display());
    // An existing empty directory is left as it was (not removed: the user made it).
    std::fs::create_dir(&repo).unwrap();
    let o = strata()
        .env_remove("STRATA_REPO_PASSWORD")
        .args([
            "repo",
            "init",
            "--repo",
            s(&repo),
            "--encryption",
            "aes-256-gcm",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(repo.is_dir());
    assert_eq!(std::fs::read_dir(&repo).unwrap().count(), 0);
}

fn wait_job(server: &Server, status_url: &str) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..600 {
        last = server
            .request(M::GET, status_url)
            .send()
            .unwrap()
            .json()
            .unwrap();
        if last["state"] != "running" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    last
}

/// (status, parsed JSON body); panics when the body is not JSON.
fn json_answer(r: reqwest::blocking::Response) -> (u16, serde_json::Value) {
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().unwrap();
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("HTTP {status} answered non-JSON ({e}): {text:?}"));
    assert!(ct.starts_with("application/json"), "{status}: {ct}");
    assert!(v["error"].is_string(), "{status}: {v}");
    (status, v)
}

#[test]
fn backup_jobs_take_json_without_content_type_and_every_error_is_json() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    init_repo(&repo);
    let server = Server::start_with(Opts {
        args: &["--repo", s(&repo), "--max-body-bytes", "4096"],
        env: &[("STRATA_REPO_PASSWORD", PASSWORD)],
        data_dir: Some(&data),
        token: None,
    });
    server.write_ok("g", "s", &format!("m v=1 {}", base_secs()));

    // The OPERATIONS.md example: curl -d '{...}' sends no JSON content type.
    let r = server
        .request(M::POST, "/api/v1/backups")
        .body(r#"{"labels": {"via": "curl"}}"#)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let job: serde_json::Value = r.json().unwrap();
    let done = wait_job(&server, job["status"].as_str().unwrap());
    assert_eq!(done["state"], "succeeded", "{done}");
    let form = server
        .request(M::POST, "/api/v1/backups")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"full": false}"#)
        .send()
        .unwrap();
    assert_eq!(form.status().as_u16(), 202);
    let job: serde_json::Value = form.json().unwrap();
    assert_eq!(
        wait_job(&server, job["status"].as_str().unwrap())["state"],
        "succeeded"
    );

    // Errors, whoever produces them, are JSON.
    let bad_json = server
        .request(M::POST, "/api/v1/backups")
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(json_answer(bad_json).0, 400);
    let unknown_field = server
        .request(M::POST, "/api/v1/backups")
        .body(r#"{"fulll": true}"#)
        .send()
        .unwrap();
    assert_eq!(json_answer(unknown_field).0, 400);
    let (st, _) = json_answer(server.request(M::GET, "/no/such/route").send().unwrap());
    assert_eq!(st, 404);
    let (st, _) = json_answer(server.request(M::GET, "/api/v1/snapshots").send().unwrap());
    assert_eq!(st, 405);
    // axum's Json extractor (PUT /api/v1/groups): wrong content type (415), bad syntax (400).
    let (st, _) = json_answer(
        server
            .request(M::PUT, "/api/v1/groups/g2")
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .unwrap(),
    );
    assert_eq!(st, 415);
    let (st, _) = json_answer(
        server
            .request(M::PUT, "/api/v1/groups/g2")
            .header("content-type", "application/json")
            .body("{")
            .send()
            .unwrap(),
    );
    assert_eq!(st, 400);
    let (st, _) = json_answer(
        server
            .request(M::POST, "/api/v1/backups")
            .body(vec![b' '; 10_000])
            .send()
            .unwrap(),
    );
    assert_eq!(st, 413);
    let (st, _) = json_answer(
        server
            .request(M::DELETE, "/api/v1/snapshots/nope")
            .send()
            .unwrap(),
    );
    assert_eq!(st, 404);
    assert!(server.stop().success());
}

#[test]
fn a_server_backup_job_uses_the_configured_s3_endpoint() {
    let s3 = s3::start();
    let endpoint = format!("http://{}", s3.addr);
    let url = format!("s3://{}/strata", s3::BUCKET);
    let t = tempfile::tempdir().unwrap();
    let s3_flags = [
        "--endpoint",
        &endpoint,
        "--region",
        "us-east-1",
        "--path-style",
        "--allow-http",
    ];
    let mut init = strata();
    init.env("AWS_ACCESS_KEY_ID", s3::ACCESS)
        .env("AWS_SECRET_ACCESS_KEY", s3::SECRET)
        .args(["repo", "init", "--repo", &url, "--kdf-memory-kib", "256"])
        .args(s3_flags);
    let o = init.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The server gets endpoint, region and credentials from its config file only.
    let config = t.path().join("strata.toml");
    std::fs::write(
        &config,
        format!(
            "repo = \"{url}\"\n[repository]\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n\
             access_key_id = \"{}\"\nsecret_access_key = \"{}\"\npath_style = true\n\
             allow_http = true\nconcurrency = 4\nlimit_upload = \"500MiB\"\n",
            s3::ACCESS,
            s3::SECRET
        ),
    )
    .unwrap();
    let data = t.path().join("data");
    let server = Server::start_with(Opts {
        args: &["--config", s(&config)],
        env: &[("STRATA_REPO_PASSWORD", PASSWORD)],
        data_dir: Some(&data),
        token: None,
    });
    server.write_ok("g", "s", &format!("m v=1 {}", base_secs()));
    let r = server
        .request(M::POST, "/api/v1/backups")
        .json(&serde_json::json!({}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let job: serde_json::Value = r.json().unwrap();
    let done = wait_job(&server, job["status"].as_str().unwrap());
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(done["stats"]["new_objects"].as_u64().unwrap() > 0, "{done}");
    // The snapshot is in the S3 repository, as the CLI sees it.
    let mut list = strata();
    list.env("AWS_ACCESS_KEY_ID", s3::ACCESS)
        .env("AWS_SECRET_ACCESS_KEY", s3::SECRET)
        .args(["snapshots", "--repo", &url, "--json"])
        .args(s3_flags);
    let o = list.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let text = v.to_string();
    assert!(text.contains(done["snapshot"].as_str().unwrap()), "{text}");
    assert!(server.stop().success());
}

/// Pinned snapshots the server holds: the directories under `data/snapshots/` (each keeps its
/// WAL cut until released).
fn pinned_dirs(data: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(data.join("snapshots"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn backup_server_with_a_wrong_password_releases_the_snapshot_it_took_meanwhile() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    init_repo(&repo);
    let server = Server::start_with(Opts {
        args: &[],
        env: &[],
        data_dir: Some(&data),
        token: None,
    });
    server.write_ok("g", "s", &format!("m v=1 {}", base_secs()));
    let o = strata()
        .env("STRATA_REPO_PASSWORD", "not the password")
        .args(["backup", "--repo", s(&repo), "--server", &server.url])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("password"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(pinned_dirs(&data).is_empty(), "{:?}", pinned_dirs(&data));
    let saved = std::fs::read_dir(repo.join("snapshots")).map_or(0, |d| d.count());
    assert_eq!(saved, 0, "no snapshot saved");

    // The right password: a backup, and again nothing stays pinned.
    let o = strata()
        .env("STRATA_REPO_PASSWORD", PASSWORD)
        .args(["backup", "--repo", s(&repo), "--server", &server.url])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(pinned_dirs(&data).is_empty(), "{:?}", pinned_dirs(&data));
}

#[test]
fn the_snapshot_api_answers_versions_1_and_2_and_refuses_others() {
    use strata_backup::snapshot_doc::AnyDoc;
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let server = Server::start(&data);
    let base = base_secs();
    // Snapshots flush first: the data is in parts.
    for i in 0..3 {
        server.write_ok("g", "s", &format!("m,host=h{i} v={i} {}", base + i));
    }
    let take = |q: &str| {
        let r = server
            .request(M::POST, &format!("/api/v1/snapshots{q}"))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let body = r.bytes().unwrap();
        let doc = AnyDoc::from_json(&body).unwrap();
        let id = doc.id().to_string();
        let snap = doc.clone().into_snapshot().unwrap();
        let r = server
            .request(M::DELETE, &format!("/api/v1/snapshots/{id}"))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
        (doc, snap, body.len())
    };
    let (d1, mut s1, n1) = take("");
    let (d2, mut s2, n2) = take("?version=2");
    assert!(matches!(d1, AnyDoc::V1(_)));
    assert!(matches!(d2, AnyDoc::V2(_)));
    assert!(!s2.parts.is_empty());
    for s in [&mut s1, &mut s2] {
        s.files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    }
    let paths = |s: &strata_engine::backup_api::Snapshot| {
        s.files
            .iter()
            .map(|f| (f.rel_path.clone(), f.size, f.kind))
            .collect::<Vec<_>>()
    };
    assert_eq!(paths(&s1), paths(&s2));
    assert_eq!(s1.parts.len(), s2.parts.len());
    assert!(
        n2 < n1,
        "version 2 ({n2} B) is smaller than version 1 ({n1} B)"
    );

    for bad in ["?version=7", "?version=x", "?version=2&version=2"] {
        let (st, body) = json_answer(
            server
                .request(M::POST, &format!("/api/v1/snapshots{bad}"))
                .send()
                .unwrap(),
        );
        assert_eq!(st, 400, "{bad}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("version"),
            "{body}"
        );
    }
    assert!(pinned_dirs(&data).is_empty(), "{:?}", pinned_dirs(&data));
}
