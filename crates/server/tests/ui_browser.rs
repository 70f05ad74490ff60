//! The web UI in a real headless Chromium (Debian `chromium` + `chromium-driver`, installed by
//! `scripts/install-test-deps.sh`) against a real `strata server` with a token, a repository
//! and a schedule: the token prompt; the overview; a backup taken through the UI appears in
//! the list; its detail and diff; a verify job watched to the end; a restore dry-run plan;
//! pin and unpin; the retention preview; a prune through the UI removes a snapshot from the
//! preview and the list; an API error shows on the page; a phone-width layout.
//!
//! Without Chromium the test is skipped with a loud message, unless `CI` is set: then it
//! fails. On failure, a screenshot of the page is saved in `target/tmp/ui-browser/`. With
//! `STRATA_UI_SCREENSHOTS=DIR`, a screenshot of every screen is saved there (how
//! `docs/ui/*.png` are made).

#![allow(clippy::unwrap_used)]

mod ui_support;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ui_support::webdriver::{Browser, Result};
use ui_support::{Server, artifacts_dir, browser_tools, strata};

const TOKEN: &str = "ui-test-token";

struct Ui {
    b: Browser,
    base: String,
    shots: Option<PathBuf>,
}

impl Ui {
    fn open(&self, path: &str) -> Result<()> {
        self.b.goto(&format!("{}{path}", self.base))?;
        self.b.wait_ready()
    }

    fn click(&self, css: &str) -> Result<()> {
        self.b.click(&self.b.find(css)?)
    }

    fn text(&self, css: &str) -> Result<String> {
        self.b.text(&self.b.find(css)?)
    }

    fn type_into(&self, css: &str, text: &str) -> Result<()> {
        self.b.type_into(&self.b.find(css)?, text)
    }

    fn no_error(&self) -> Result<()> {
        let shown = self
            .b
            .script("return document.getElementById('error').hidden ? '' : document.getElementById('error').textContent;")?;
        match shown.as_str() {
            Some("") | None => Ok(()),
            Some(e) => Err(format!("the page shows an error: {e}")),
        }
    }

    /// A screenshot of the screen for the docs, when asked for.
    fn shot(&self, name: &str) -> Result<()> {
        if let Some(dir) = &self.shots {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            std::fs::write(dir.join(format!("{name}.png")), self.b.screenshot()?)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Runs one step; on failure saves a screenshot named after it and says where.
    fn step(&self, name: &str, f: impl FnOnce(&Ui) -> Result<()>) {
        if let Err(e) = f(self) {
            let path = artifacts_dir().join(format!("{name}.png"));
            let saved = match self.b.screenshot() {
                Ok(png) => std::fs::write(&path, png).map(|_| path.display().to_string()),
                Err(e) => Ok(format!("(no screenshot: {e})")),
            };
            panic!(
                "UI step '{name}' failed: {e}\nscreenshot: {}",
                saved.unwrap_or_else(|e| e.to_string())
            );
        }
    }
}

fn write_points(url: &str, n: u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut body = String::new();
    for i in 0..n {
        body.push_str(&format!(
            "cpu,host=h{} usage={}.5 {}\nmem,host=h{} used={}i {}\n",
            i % 3,
            i,
            now - 600 + i,
            i % 3,
            i * 10,
            now - 600 + i
        ));
    }
    let r = reqwest::blocking::Client::new()
        .post(format!("{url}/api/v1/write?group=metrics&precision=s"))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204, "{}", r.text().unwrap_or_default());
}

fn api(url: &str, method: &str, path: &str) -> serde_json::Value {
    let c = reqwest::blocking::Client::new();
    let req = match method {
        "POST" => c.post(format!("{url}{path}")),
        _ => c.get(format!("{url}{path}")),
    };
    let r = req.bearer_auth(TOKEN).send().unwrap();
    assert!(r.status().is_success(), "{method} {path}: {}", r.status());
    r.json().unwrap()
}

/// A backup through the API, waited for (the second snapshot the retention test needs).
fn backup_via_api(url: &str) -> String {
    let job = api(url, "POST", "/api/v1/backups")["job"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..600 {
        let j = api(url, "GET", &format!("/api/v1/jobs/{job}"));
        match j["state"].as_str() {
            Some("running") => std::thread::sleep(std::time::Duration::from_millis(50)),
            Some("succeeded") => return j["snapshot"].as_str().unwrap().to_string(),
            s => panic!("backup job {job} ended {s:?}: {j}"),
        }
    }
    panic!("backup job {job} did not finish in 30 s");
}

fn config(dir: &Path, repo: &str) -> PathBuf {
    let path = dir.join("strata.toml");
    let toml = format!(
        r#"data_dir = "{}"
repo = "{repo}"
auth_token = "{TOKEN}"
jobs_history = "{}"

[[schedule]]
name = "hourly"
cron = "0 0 * * * *"
retention = {{ keep_last = 24 }}
"#,
        dir.join("data").display(),
        dir.join("jobs.log").display(),
    );
    std::fs::write(&path, toml).unwrap();
    path
}

#[test]
fn web_ui_in_chromium() {
    let Some((driver, chromium)) = browser_tools() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but chromium/chromedriver are missing: run scripts/install-test-deps.sh"
        );
        eprintln!(
            "\n\n*** SKIPPED web_ui_in_chromium: chromium and chromedriver are not installed \
             (scripts/install-test-deps.sh installs them) ***\n\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("repo");
    let repo = format!("file://{}", repo_dir.display());
    strata(&["repo", "init", "--repo", &repo, "--encryption", "none"]);
    let server = Server::start(&config(dir.path(), &repo), &dir.path().join("server.log"));
    write_points(&server.url, 200);

    let b = Browser::start(&driver, &chromium, 1280, 800).unwrap();
    let ui = Ui {
        b,
        base: server.url.clone(),
        shots: std::env::var_os("STRATA_UI_SCREENSHOTS").map(PathBuf::from),
    };

    ui.step("token", |ui| {
        ui.b.goto(&format!("{}/ui/", ui.base))?;
        // The page asks for the token (the API answered 401) and says so.
        ui.b.wait("the token prompt", 20, |b| {
            let v = b.script("return !document.getElementById('token-form').hidden;")?;
            Ok((v == serde_json::json!(true)).then_some(()))
        })?;
        ui.type_into("#token-input", TOKEN)?;
        ui.click("#token-form button")?;
        ui.b.wait_ready()?;
        ui.no_error()
    });

    ui.step("overview", |ui| {
        let row = ui.b.wait_text("#schedules tbody", "hourly", 10)?;
        if !row.contains("never") {
            return Err(format!("a schedule that never ran should say so: {row}"));
        }
        let repo_facts = ui.text("#repository")?;
        if !repo_facts.contains("file://") {
            return Err(format!("repository card: {repo_facts}"));
        }
        if !ui
            .text("#cli-backup")?
            .contains("strata backup --repo file://")
        {
            return Err("no CLI command for the backup".into());
        }
        ui.shot("overview")
    });

    let first = std::cell::RefCell::new(String::new());
    ui.step("backup", |ui| {
        ui.click("#backup-now")?;
        let status = ui.b.wait_text("#backup-status", "succeeded", 30)?;
        let id = status
            .split("snapshot ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .ok_or_else(|| format!("no snapshot id in '{status}'"))?;
        *first.borrow_mut() = id.trim().to_string();
        ui.no_error()
    });
    let first = first.into_inner();

    ui.step("snapshots", |ui| {
        ui.open("/ui/snapshots")?;
        let rows = ui.b.find_all("#snapshots tbody tr")?;
        if rows.len() != 1 {
            return Err(format!("{} rows, expected the one backup", rows.len()));
        }
        let row = ui.text("#snapshots tbody tr")?;
        for want in [first.as_str(), "metrics", "manual", "no policy covers it"] {
            if !row.contains(want) {
                return Err(format!("row lacks '{want}': {row}"));
            }
        }
        ui.no_error()?;
        ui.shot("snapshots")
    });

    ui.step("detail", |ui| {
        ui.click("#snapshots tbody a.snap")?;
        ui.b.wait_ready()?;
        let groups = ui.b.wait_text("#groups tbody", "metrics", 10)?;
        for want in ["cpu", "mem"] {
            if !groups.contains(want) {
                return Err(format!("detail lacks measure {want}: {groups}"));
            }
        }
        if !ui.text("#diff-summary")?.contains("first snapshot") {
            return Err("the first snapshot has nothing to diff against".into());
        }
        ui.no_error()
    });

    ui.step("verify", |ui| {
        ui.click("#read-data")?;
        if !ui.text("#cli-verify")?.contains("--read-data") {
            return Err("the verify command does not follow the checkbox".into());
        }
        ui.click("#verify")?;
        let s = ui.b.wait_text("#verify-status", "verified", 30)?;
        if !s.contains("objects intact") || !s.contains("read and checked") {
            return Err(format!("verify status: {s}"));
        }
        // The verify ran as a job with its own record.
        let jobs = api(&ui.base, "GET", "/api/v1/jobs?kind=verify");
        if jobs["jobs"][0]["state"] != "succeeded" || jobs["jobs"][0]["snapshot"] != first.as_str()
        {
            return Err(format!("verify job: {jobs}"));
        }
        ui.shot("snapshot")
    });

    // A second snapshot with more data: a diff, and something for retention to remove.
    write_points(&server.url, 50);
    let second = backup_via_api(&server.url);

    ui.step("diff", |ui| {
        ui.open(&format!("/ui/snapshots/{second}"))?;
        let s = ui.b.wait_text("#diff-summary", &first, 10)?;
        if !s.starts_with(&format!("Against {first}")) {
            return Err(format!("diff summary: {s}"));
        }
        if !ui
            .text("#cli-diff")?
            .contains(&format!("strata diff --repo {repo} {first} {second}"))
        {
            return Err(format!("diff command: {}", ui.text("#cli-diff")?));
        }
        ui.no_error()
    });

    ui.step("restore-plan", |ui| {
        ui.open(&format!("/ui/restore?snapshot={first}"))?;
        let target = dir.path().join("restored");
        ui.type_into("#data-dir", &target.display().to_string())?;
        ui.type_into("#measures", "cpu")?;
        ui.click("#plan")?;
        ui.b.wait_text("#plan-status", "plan ready", 20)?;
        let facts = ui.text("#plan-facts")?;
        if !facts.contains(&first) || !facts.contains("parts") {
            return Err(format!("plan: {facts}"));
        }
        let run = ui.text("#cli-run")?;
        if !run.contains(&format!("--snapshot {first}")) || !run.contains("--measure cpu") {
            return Err(format!("restore command: {run}"));
        }
        if target.exists() {
            return Err("a dry run wrote the target".into());
        }
        ui.no_error()?;
        ui.shot("restore")
    });

    ui.step("restore-online", |ui| {
        ui.open(&format!("/ui/restore?snapshot={first}"))?;
        ui.click("input[name=where][value=online]")?;
        ui.type_into("#into-group", "metrics_back")?;
        ui.type_into("#groups", "metrics")?;
        ui.click("#plan")?;
        ui.b.wait_text("#plan-status", "plan ready", 20)?;
        let changes = ui.text("#plan-changes")?;
        if !changes.contains("new group") || !changes.contains("metrics_back") {
            return Err(format!("online plan: {changes}"));
        }
        let run = ui.text("#cli-run")?;
        if !run.contains("--server") || !run.contains("--into-group metrics_back") {
            return Err(format!("online restore command: {run}"));
        }
        ui.shot("restore-online")?;
        ui.click("#run")?;
        ui.b.wait_text("#plan-status", "answers queries now", 60)?;
        // The new group answers a query with the points the first backup held.
        let q: serde_json::Value = reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/query", ui.base))
            .bearer_auth(TOKEN)
            .body(r#"{"group":"metrics_back","measure":"cpu","agg":{"fn":"count"}}"#)
            .send()
            .and_then(|r| r.json())
            .map_err(|e| e.to_string())?;
        let n: u64 = q["series"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["values"].as_array().into_iter().flatten())
            .filter_map(|row| row[1].as_u64())
            .sum();
        if n != 200 {
            return Err(format!(
                "metrics_back answers {n} cpu points, the first backup held 200: {q}"
            ));
        }
        ui.no_error()
    });

    ui.step("pin", |ui| {
        ui.open("/ui/snapshots")?;
        let rows = ui.b.find_all("#snapshots tbody tr")?;
        if rows.len() != 2 {
            return Err(format!("{} rows, expected 2", rows.len()));
        }
        // Newest first: the first snapshot is the second row.
        ui.click(&format!("tr[data-id='{first}'] button.pin"))?;
        ui.b.wait_text(&format!("tr[data-id='{first}']"), "pinned", 10)?;
        let pinned = api(&ui.base, "GET", "/api/v1/repository/snapshots");
        if pinned["snapshots"][1]["pinned"] != true {
            return Err(format!("not pinned in the repository: {pinned}"));
        }
        ui.click(&format!("tr[data-id='{first}'] button.pin"))?;
        ui.b.wait("the pin to go", 10, |b| {
            let t = b.text(&b.find(&format!("tr[data-id='{first}']"))?)?;
            Ok((!t.contains("pinned")).then_some(()))
        })?;
        ui.no_error()
    });

    ui.step("retention", |ui| {
        ui.open("/ui/retention")?;
        // The schedule's policy is preselected; preview a custom one keeping the newest.
        ui.b.script("const s = document.getElementById('schedule'); s.value = ''; s.dispatchEvent(new Event('change'));")?;
        ui.type_into("input[name=keep_last]", "1")?;
        ui.type_into("input[name=grace]", "0s")?;
        ui.click("#preview")?;
        let s = ui.b.wait_text("#summary", "1 removed", 20)?;
        let removed = ui.text(&format!("#decisions tr[data-id='{first}']"))?;
        if !removed.contains("remove") {
            return Err(format!("{first} should be removed: {removed} ({s})"));
        }
        let kept = ui.text(&format!("#decisions tr[data-id='{second}']"))?;
        if !kept.contains("last #1") {
            return Err(format!("{second} should be kept as last #1: {kept}"));
        }
        if !ui.text("#cli")?.contains("strata prune --repo") {
            return Err("no prune command".into());
        }
        ui.shot("retention")
    });

    ui.step("prune", |ui| {
        ui.click("#prune")?;
        ui.click("#confirm-yes")?;
        ui.b.wait_text("#summary", "pruned: 1 snapshots removed", 30)?;
        if !ui
            .b
            .find_all(&format!("#decisions tr[data-id='{first}']"))?
            .is_empty()
        {
            return Err(format!("{first} is still in the preview"));
        }
        ui.open("/ui/snapshots")?;
        let rows = ui.text("#snapshots tbody")?;
        if rows.contains(&first) || !rows.contains(&second) {
            return Err(format!("after the prune the list holds: {rows}"));
        }
        ui.no_error()
    });

    ui.step("attachments", |ui| {
        ui.open("/ui/attachments")?;
        ui.type_into("input[name=as]", "old_")?;
        ui.type_into("input[name=groups]", "metrics")?;
        ui.click("#attach button[type=submit]")?;
        ui.b.wait_text("#attach-status", "attached old_", 30)?;
        let row = ui.b.wait_text("#attachments tbody", "metrics", 10)?;
        if !row.contains(&second) {
            return Err(format!("attachment row: {row}"));
        }
        // The attached group answers queries under its prefix.
        let q = reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/query", ui.base))
            .bearer_auth(TOKEN)
            .body(r#"{"group":"old_metrics","measure":"cpu"}"#)
            .send()
            .map_err(|e| e.to_string())?;
        if !q.status().is_success() {
            return Err(format!("query of the attachment: {}", q.status()));
        }
        ui.shot("attachments")?;
        ui.click("#attachments tbody button")?;
        ui.b.wait("the detach", 10, |b| {
            let v = b.script("return document.getElementById('empty').hidden;")?;
            Ok((v == serde_json::json!(false)).then_some(()))
        })?;
        ui.no_error()
    });

    ui.step("jobs", |ui| {
        ui.open("/ui/jobs")?;
        let t = ui.b.wait_text("#jobs tbody", "prune", 10)?;
        for want in ["backup", "verify", "succeeded"] {
            if !t.contains(want) {
                return Err(format!("jobs list lacks {want}: {t}"));
            }
        }
        ui.shot("jobs")
    });

    ui.step("api-error", |ui| {
        ui.b.goto(&format!("{}/ui/snapshots/no-such-snapshot", ui.base))?;
        ui.b.wait_ready()?;
        let e = ui.b.wait_text("#error", "not found", 10)?;
        if !e.contains("404") {
            return Err(format!("error banner: {e}"));
        }
        Ok(())
    });

    ui.step("keyboard", |ui| {
        ui.open("/ui/")?;
        // Tab from the top reaches the skip link, then the navigation, in order.
        ui.b.press("\u{E004}")?;
        let first_focus = ui.b.script("return document.activeElement.textContent;")?;
        if first_focus != "Skip to content" {
            return Err(format!("first tab stop: {first_focus}"));
        }
        ui.b.press("\u{E004}")?;
        let second_focus = ui.b.script("return document.activeElement.textContent;")?;
        if second_focus != "Strata" {
            return Err(format!("second tab stop: {second_focus}"));
        }
        // Enter on a focused link follows it.
        for _ in 0..2 {
            ui.b.press("\u{E004}")?;
        }
        let third =
            ui.b.script("return document.activeElement.getAttribute('href');")?;
        if third != "/ui/snapshots" {
            return Err(format!("fourth tab stop: {third}"));
        }
        ui.b.press("\u{E007}")?;
        ui.b.wait("the snapshots page", 10, |b| {
            let v = b.script("return document.body.dataset.page;")?;
            Ok((v == "snapshots").then_some(()))
        })?;
        Ok(())
    });

    ui.step("phone", |ui| {
        ui.b.resize(390, 844)?;
        ui.open("/ui/snapshots")?;
        let overflow = ui.b.script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        )?;
        if overflow.as_i64().unwrap_or(1) > 0 {
            return Err(format!(
                "the page scrolls sideways by {overflow} px at phone width"
            ));
        }
        ui.shot("snapshots-phone")
    });
}
