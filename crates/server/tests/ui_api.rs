//! The repository API the web UI uses (`docs/API.md`, "Repository"), through a real `strata
//! server`: sizes and keep reasons, detail and diff, verify jobs that find damage, restore
//! plans and their refusals, prune preview and prune, pins and deletes, the overview, and
//! the pages themselves (served without the token, API calls with it).

#![allow(clippy::unwrap_used)]

mod ui_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use ui_support::{Server, strata};

const TOKEN: &str = "api-test-token";

struct Api {
    url: String,
    http: reqwest::blocking::Client,
}

impl Api {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let req = match method {
            "GET" => self.http.get(url),
            "PUT" => self.http.put(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url),
        };
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let r = req.bearer_auth(TOKEN).send().unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method, path, body);
        assert!((200..300).contains(&s), "{method} {path}: {s} {v}");
        v
    }

    fn write(&self, n: u64) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let body: String = (0..n)
            .map(|i| format!("cpu,host=h{} usage={i}.5 {}\n", i % 4, now - 900 + i))
            .collect();
        let r = self
            .http
            .post(format!(
                "{}/api/v1/write?group=metrics&precision=s",
                self.url
            ))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
    }

    fn job(&self, id: &str) -> Value {
        for _ in 0..600 {
            let j = self.ok("GET", &format!("/api/v1/jobs/{id}"), None);
            if j["state"] != "running" {
                return j;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("job {id} did not finish");
    }

    fn backup(&self) -> String {
        let r = self.ok("POST", "/api/v1/backups", Some(json!({"full": true})));
        let j = self.job(r["job"].as_str().unwrap());
        assert_eq!(j["state"], "succeeded", "{j}");
        j["snapshot"].as_str().unwrap().to_string()
    }
}

fn config(dir: &Path, repo: &str) -> PathBuf {
    let path = dir.join("strata.toml");
    std::fs::write(
        &path,
        format!(
            r#"data_dir = "{}"
repo = "{repo}"
auth_token = "{TOKEN}"

[[schedule]]
name = "hourly"
cron = "0 0 * * * *"
retention = {{ keep_last = 2 }}
"#,
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

fn start(dir: &Path) -> (Server, Api, String) {
    let repo = format!("file://{}", dir.join("repo").display());
    strata(&["repo", "init", "--repo", &repo, "--encryption", "none"]);
    let server = Server::start(&config(dir, &repo), &dir.join("server.log"));
    let api = Api {
        url: server.url.clone(),
        http: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
    };
    (server, api, repo)
}

#[test]
fn pages_need_no_token_and_the_api_does() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, api, _) = start(dir.path());
    let http = reqwest::blocking::Client::new();
    for page in [
        "/ui/",
        "/ui/snapshots",
        "/ui/snapshots/x",
        "/ui/restore",
        "/ui/retention",
        "/ui/jobs",
        "/ui/attachments",
    ] {
        let r = http.get(format!("{}{page}", api.url)).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{page}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        let body = r.text().unwrap();
        assert!(body.contains("/ui/assets/app.js"), "{page}");
        // Nothing from the repository or the server's secrets is in a page.
        assert!(!body.contains(TOKEN) && !body.contains("file://"), "{page}");
    }
    let js = http
        .get(format!("{}/ui/assets/app.js", api.url))
        .send()
        .unwrap();
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let r = http.get(format!("{}/ui", api.url)).send().unwrap();
    assert_eq!(r.url().path(), "/ui/", "redirected");
    for path in ["/api/v1/overview", "/api/v1/repository/snapshots"] {
        let r = http.get(format!("{}{path}", api.url)).send().unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path}");
    }
}

#[test]
fn repository_api_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, api, repo) = start(dir.path());
    api.write(300);
    // Two schedule runs (retention keep_last 2), then an API backup with more data.
    // A run is over when the schedule names a new last job and runs nothing.
    let run = |api: &Api, prev: Option<&str>| -> String {
        api.ok("POST", "/api/v1/schedules/hourly/run", None);
        for _ in 0..600 {
            let s = api.ok("GET", "/api/v1/schedules", None);
            let st = &s["schedules"][0]["state"];
            let last = st["last_job"].as_str();
            if st["running"].is_null() && last.is_some() && last != prev {
                let j = api.job(last.unwrap_or_default());
                assert_eq!(j["state"], "succeeded", "{j}");
                return j["snapshot"].as_str().unwrap().to_string();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("schedule run did not finish");
    };
    let s1 = run(&api, None);
    let job1 = api.ok("GET", "/api/v1/schedules", None)["schedules"][0]["state"]["last_job"]
        .as_str()
        .unwrap()
        .to_string();
    api.write(100);
    let s2 = run(&api, Some(&job1));
    api.write(100);
    let manual = api.backup();

    // The list: newest first, sizes, keep reasons from the schedule's policy, filters.
    let l = api.ok("GET", "/api/v1/repository/snapshots", None);
    assert_eq!(l["total"], 3, "{l}");
    let ids: Vec<&str> = l["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [manual.as_str(), s2.as_str(), s1.as_str()]);
    let row = |id: &str| {
        l["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(row(&s2)["keep"], json!(["last #1"]));
    assert_eq!(row(&s1)["keep"], json!(["last #2"]));
    assert_eq!(row(&s1)["policy"], "schedule hourly");
    assert_eq!(row(&manual)["keep"], json!([]));
    assert!(row(&manual)["policy"].is_null());
    for id in [&s1, &s2, &manual] {
        let r = row(id);
        assert!(r["bytes"].as_u64().unwrap() > 0);
        assert!(r["stored_bytes"].as_u64().unwrap() >= r["unique_bytes"].as_u64().unwrap());
    }
    // Every snapshot is a full backup of a data directory that only grew: what is unique to
    // the newest is at least what it uploaded new.
    let sum_unique: u64 = l["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["unique_bytes"].as_u64().unwrap())
        .sum();
    let (ov_status, ov) = api.call("GET", "/api/v1/overview", None);
    assert_eq!(ov_status, 200);
    assert!(
        ov["repository"]["stored_bytes"].as_u64().unwrap() >= sum_unique,
        "{ov}"
    );
    assert_eq!(ov["repository"]["snapshots"], 3);
    let sched = &ov["schedules"][0];
    assert_eq!(sched["name"], "hourly");
    assert_eq!(sched["period_s"], 3600);
    assert_eq!(sched["overdue"], false, "{sched}");
    assert_eq!(ov["archive"]["enabled"], false);
    let f = api.ok(
        "GET",
        "/api/v1/repository/snapshots?schedule=hourly&limit=1&offset=1",
        None,
    );
    assert_eq!(
        (f["total"].as_u64(), f["snapshots"][0]["id"].as_str()),
        (Some(2), Some(s1.as_str()))
    );
    let g = api.ok("GET", "/api/v1/repository/snapshots?group=nope", None);
    assert_eq!(g["total"], 0);
    assert_eq!(
        api.call("GET", "/api/v1/repository/snapshots?bogus=1", None)
            .0,
        400
    );

    // Detail and diff against the node's previous snapshot.
    let d = api.ok(
        "GET",
        &format!("/api/v1/repository/snapshots/{manual}"),
        None,
    );
    assert_eq!(d["diff"]["from"], s2.as_str());
    assert_eq!(d["groups"][0]["name"], "metrics");
    assert_eq!(d["groups"][0]["measures"][0]["name"], "cpu");
    // The group holds one measure: its counts and bytes are its own, never null.
    let cpu = &d["groups"][0]["measures"][0];
    assert!(
        cpu["series"].is_u64() && cpu["rows"].is_u64() && cpu["bytes"].is_u64(),
        "{cpu}"
    );
    assert_eq!(cpu["rows"], d["groups"][0]["rows"], "{d}");
    assert_eq!(d["encryption"], "none");
    let first = api.ok("GET", &format!("/api/v1/repository/snapshots/{s1}"), None);
    assert!(first["diff"].is_null());
    assert_eq!(
        api.call("GET", "/api/v1/repository/snapshots/nope", None).0,
        404
    );

    // Pins, and deletes that refuse what they must.
    api.ok(
        "PUT",
        &format!("/api/v1/repository/snapshots/{s1}/pin"),
        None,
    );
    let (s, v) = api.call(
        "DELETE",
        &format!("/api/v1/repository/snapshots/{s1}"),
        None,
    );
    assert_eq!(s, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("pinned"), "{v}");
    let prefix = &manual[..manual.len() - 2];
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/api/v1/repository/snapshots/{prefix}"),
            None
        )
        .0,
        404
    );

    // Prune preview: the pin keeps s1 whatever the policy says.
    let p = api.ok(
        "POST",
        "/api/v1/repository/prune-preview",
        Some(json!({"keep_last": 1})),
    );
    let decision = |p: &Value, id: &str| {
        p["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(decision(&p, &s1)["reasons"], json!(["pinned"]));
    assert_eq!(decision(&p, &s2)["keep"], false);
    assert_eq!(decision(&p, &manual)["reasons"], json!(["last #1"]));
    let sp = api.ok(
        "POST",
        "/api/v1/repository/prune-preview",
        Some(json!({"schedule": "hourly"})),
    );
    assert_eq!(
        sp["decisions"].as_array().unwrap().len(),
        2,
        "only the schedule's: {sp}"
    );
    for bad in [
        json!({}),
        json!({"keep_last": 0}),
        json!({"keep_within": "soon"}),
        json!({"schedule": "nope"}),
        json!({"keep_lats": 1}),
    ] {
        let (s, v) = api.call(
            "POST",
            "/api/v1/repository/prune-preview",
            Some(bad.clone()),
        );
        assert_eq!(s, 400, "{bad}: {v}");
        let (s, _) = api.call("POST", "/api/v1/repository/prune", Some(bad.clone()));
        assert_eq!(s, 400, "a bad policy starts no job: {bad}");
    }
    api.ok(
        "DELETE",
        &format!("/api/v1/repository/snapshots/{s1}/pin"),
        None,
    );

    // Restore plans: nothing is written; refusals are one clear line.
    let target = dir.path().join("restored");
    let plan = api.ok(
        "POST",
        "/api/v1/repository/restore-plan",
        Some(json!({"snapshot": s2, "data_dir": target})),
    );
    assert_eq!(plan["snapshot"], s2.as_str());
    assert_eq!(plan["target_in_use"], false);
    assert!(plan["objects"].as_u64().unwrap() > 0);
    assert!(
        plan["changes"][0]
            .as_str()
            .unwrap()
            .contains("empty or absent"),
        "{plan}"
    );
    let sel = api.ok(
        "POST",
        "/api/v1/repository/restore-plan",
        Some(json!({"data_dir": target, "measures": ["cpu"], "tags": ["host=h1"]})),
    );
    assert_eq!(sel["snapshot"], manual.as_str(), "latest by default");
    assert!(sel["selective"]["parts_total"].as_u64().is_some(), "{sel}");
    assert!(!target.exists(), "a plan wrote its target");
    for (bad, status) in [
        (json!({"data_dir": "relative/dir"}), 400),
        (json!({"into_group": "g2"}), 400),
        (json!({}), 400),
        (json!({"data_dir": target, "measures": ["nope"]}), 400),
        (json!({"data_dir": target, "tags": ["novalue"]}), 400),
        (json!({"data_dir": target, "from": "yesterday"}), 400),
        (json!({"data_dir": target, "snapshot": "nope"}), 404),
        // The server's own data directory is in use.
        (json!({"data_dir": dir.path().join("data")}), 409),
    ] {
        let (s, v) = api.call("POST", "/api/v1/repository/restore-plan", Some(bad.clone()));
        assert_eq!(s, status, "{bad}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.contains('\n')),
            "{v}"
        );
    }

    // Verify as a job; then damage an object only s1 holds and watch verify find it.
    let r = api.ok(
        "POST",
        &format!("/api/v1/repository/snapshots/{s1}/verify"),
        Some(json!({"read_data": true})),
    );
    let j = api.job(r["job"].as_str().unwrap());
    assert_eq!(j["state"], "succeeded", "{j}");
    assert_eq!(j["kind"], "verify");
    assert!(j["detail"]["report"]["objects_checked"].as_u64().unwrap() > 0);
    let shown = strata(&["show", "--repo", &repo, &manual, "--json"]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    let object = shown["manifest"]["files"][0]["object"]
        .as_str()
        .unwrap()
        .to_string();
    let repo_dir = dir.path().join("repo");
    let path = find_object(&repo_dir, &object).expect("object file");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    let r = api.ok(
        "POST",
        &format!("/api/v1/repository/snapshots/{manual}/verify"),
        Some(json!({"read_data": true})),
    );
    let j = api.job(r["job"].as_str().unwrap());
    assert_eq!(j["state"], "failed", "{j}");
    assert!(j["error"].as_str().unwrap().contains(&object), "{j}");
    assert!(
        !j["detail"]["report"]["damage"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Prune through the API: s1 and s2 go with keep-last 1.
    let r = api.ok(
        "POST",
        "/api/v1/repository/prune",
        Some(json!({"keep_last": 1, "grace": "0s"})),
    );
    let j = api.job(r["job"].as_str().unwrap());
    assert_eq!(j["state"], "succeeded", "{j}");
    assert_eq!(j["detail"]["report"]["snapshots_removed"], 2, "{j}");
    let l = api.ok("GET", "/api/v1/repository/snapshots", None);
    assert_eq!(l["total"], 1);
    // Delete the last one by hand.
    api.ok(
        "DELETE",
        &format!("/api/v1/repository/snapshots/{manual}"),
        None,
    );
    assert_eq!(
        api.ok("GET", "/api/v1/repository/snapshots", None)["total"],
        0
    );
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/api/v1/repository/snapshots/{manual}"),
            None
        )
        .0,
        404
    );
}

fn find_object(dir: &Path, id: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()? {
        let p = e.ok()?.path();
        if p.is_dir() {
            if let Some(f) = find_object(&p, id) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n.to_string_lossy() == id) {
            return Some(p);
        }
    }
    None
}
