//! Runs `strata-bench --smoke` end to end against the workspace's `strata` binary (and
//! VictoriaMetrics and restic when installed), so the harness never rots. It checks that every
//! scenario is reported — with figures, or "skipped" with a reason — and that the peers, when
//! present, produce real figures. It asserts no timings.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `target/<profile>/` of this test run: the test executable lives in `<that>/deps/`.
fn profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.to_path_buf())
}

/// The `strata` binary of this workspace, built if missing. A present binary is used as is
/// (it may be older than the sources: this test checks the harness, not Strata), because
/// rebuilding from inside `cargo test -p strata-bench` can take minutes.
fn strata_binary() -> Result<PathBuf, String> {
    let dir = profile_dir().ok_or("cannot locate the target directory")?;
    let bin = dir.join("strata");
    if bin.is_file() {
        return Ok(bin);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--workspace", "--bin", "strata"]);
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() || !bin.is_file() {
        return Err(format!("`cargo build --bin strata` failed ({status})"));
    }
    Ok(bin)
}

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn row<'a>(report: &'a Value, scenario: &str, system: &str) -> Option<&'a Value> {
    report["rows"]
        .as_array()?
        .iter()
        .find(|r| r["scenario"] == scenario && r["system"] == system)
}

fn median(row: &Value, metric: &str) -> f64 {
    row["metrics"][metric]["median"]
        .as_f64()
        .unwrap_or(f64::NAN)
}

const KINDS: [&str; 4] = [
    "single_series_1h",
    "region_mean_1m_1h",
    "groupby_host_1h_1d",
    "lastpoint_all_hosts",
];

/// A strata row that must have figures (the feature is on main), or the test fails with why.
fn measured<'a>(report: &'a Value, scenario: &str) -> &'a Value {
    let r = row(report, scenario, "strata").unwrap_or_else(|| panic!("no strata row {scenario}"));
    assert!(r["skipped"].is_null(), "{scenario} skipped: {r}");
    r
}

/// The query-a-backup rows: figures that say the queries ran against the repository and
/// answered as the live server did.
fn check_query_repo(report: &Value, prefix: &str) {
    let summary = measured(report, prefix);
    let repo_bytes = median(summary, "repository_bytes");
    assert!(repo_bytes > 0.0, "{summary}");
    assert!(median(summary, "fixed_ms") > 0.0, "{summary}");
    for kind in KINDS {
        let r = measured(report, &format!("{prefix}_{kind}"));
        assert_eq!(median(r, "answers_match_live"), 1.0, "{kind}: {r}");
        let fetched = median(r, "first_bytes_fetched");
        assert!(fetched > 0.0 && fetched <= repo_bytes, "{kind}: {r}");
        assert_eq!(
            median(r, "warm_bytes_fetched"),
            0.0,
            "{kind}: warm fetched: {r}"
        );
        for m in ["first_ms", "warm_ms", "live_ms", "warm_to_live"] {
            assert!(median(r, m) > 0.0, "{kind}: {m}: {r}");
        }
    }
}

#[test]
fn smoke_run_reports_every_scenario() {
    let strata = match strata_binary() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("SKIPPED: smoke test needs the strata binary: {e}");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let json = tmp.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_strata-bench"))
        .arg("--smoke")
        .arg("--strata-bin")
        .arg(&strata)
        .arg("--work-dir")
        .arg(tmp.path().join("work"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap_or_else(|e| panic!("run strata-bench: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "strata-bench failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("| scenario | system |"), "{stdout}");

    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("read report: {e}"));
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("report JSON: {e}"));
    assert_eq!(report["config"]["points"], 1800, "smoke size");
    assert!(report["machine"]["nproc"].as_u64().unwrap_or(0) > 0);

    let scenarios = [
        "ingest",
        "disk",
        "disk_at_rest",
        "query_single_series_1h",
        "query_region_mean_1m_1h",
        "query_groupby_host_1h_1d",
        "query_lastpoint_all_hosts",
        "backup_full_enc_on",
        "backup_full_enc_off",
        "backup_nothing_new",
        "backup_incremental_1pct",
        "restore",
        "write_p99_during_backup",
        "memory_10x",
        "backup_nothing_new_1000_parts",
        "query_repo_local",
        "query_repo_s3",
        "query_repo_one_group_of_ten",
    ];
    // Strata: every scenario has figures or says why it was skipped.
    for sc in scenarios {
        let r = row(&report, sc, "strata").unwrap_or_else(|| panic!("no strata row for {sc}"));
        let has_figures = r["metrics"].as_object().is_some_and(|m| !m.is_empty());
        let reason = r["skipped"].as_str().unwrap_or("");
        assert!(has_figures == reason.is_empty(), "{sc}: {r}");
        if sc == "ingest" && has_figures {
            assert!(median(r, "points_per_s") > 0.0, "{r}");
        }
    }
    if let Some(r) = row(&report, "ingest", "strata").filter(|r| r["skipped"].is_null()) {
        let disk = row(&report, "disk", "strata").unwrap_or(r);
        assert!(
            median(disk, "data_bytes") > 0.0,
            "strata ingested but nothing on disk: {disk}"
        );
    }

    // Querying a backup where it lies: local, S3 (requests counted), one group of ten.
    check_query_repo(&report, "query_repo_local");
    check_query_repo(&report, "query_repo_s3");
    check_query_repo(&report, "query_repo_one_group_of_ten");
    for kind in KINDS {
        let s3 = measured(&report, &format!("query_repo_s3_{kind}"));
        assert!(median(s3, "s3_gets_first") > 0.0, "{s3}");
        assert!(median(s3, "s3_bytes_served_first") > 0.0, "{s3}");
        let local = measured(&report, &format!("query_repo_local_{kind}"));
        assert!(median(local, "live_cli_ms") > 0.0, "{local}");
        // Attached to the live server: same answers, figures for the attach and the queries.
        let g = format!("query_repo_one_group_of_ten_{kind}");
        assert!(median(s3, "attach_s3_requests") > 0.0, "{s3}");
        for r in [local, s3, measured(&report, &g)] {
            assert_eq!(median(r, "attached_answers_match_live"), 1.0, "{r}");
            assert!(median(r, "attached_warm_ms") > 0.0, "{r}");
            assert!(median(r, "attached_bytes_fetched") > 0.0, "{r}");
        }
        // One group of ten: less than the whole repository, and every fetched object named.
        let g = measured(&report, &format!("query_repo_one_group_of_ten_{kind}"));
        assert!(median(g, "first_fetched_fraction") < 0.9, "{g}");
        assert_eq!(median(g, "first_fetched_other_groups_bytes"), 0.0, "{g}");
        assert_eq!(median(g, "first_unnamed_objects"), 0.0, "{g}");
        assert!(median(g, "first_fetched_by_range_bytes") >= 0.0, "{g}");
    }
    let s3 = measured(&report, "query_repo_s3");
    assert!(median(s3, "backup_s3_puts") > 0.0, "{s3}");
    let groups = measured(&report, "query_repo_one_group_of_ten");
    let share = median(groups, "group_data_share");
    assert!(share > 0.0 && share < 0.5, "{groups}");

    // VictoriaMetrics: the harness must get real figures out of it in every scenario.
    if installed("victoria-metrics") && installed("vmbackup") && installed("vmrestore") {
        for sc in scenarios {
            if sc.starts_with("query_repo") || sc == "backup_nothing_new_1000_parts" {
                continue; // Strata only
            }
            let sys = match sc {
                s if s.starts_with("backup") || s == "memory_10x" => "vmbackup",
                "restore" => "vmrestore",
                _ => "vm",
            };
            let r = row(&report, sc, sys).unwrap_or_else(|| panic!("no {sys} row for {sc}"));
            assert!(r["skipped"].is_null(), "{sc} [{sys}] skipped: {r}");
        }
        let ingest = row(&report, "ingest", "vm").unwrap_or(&Value::Null);
        assert!(median(ingest, "points_per_s") > 0.0, "{ingest}");
        let disk = row(&report, "disk", "vm").unwrap_or(&Value::Null);
        assert!(median(disk, "bytes_per_point") > 0.0, "{disk}");
        // At rest: the base data, +1 % and both paced loads were all acknowledged.
        let rest = row(&report, "disk_at_rest", "vm").unwrap_or(&Value::Null);
        assert!(median(rest, "points") > 1800.0, "{rest}");
        assert!(median(rest, "data_bytes") > 0.0, "{rest}");
        let q = row(&report, "query_lastpoint_all_hosts", "vm").unwrap_or(&Value::Null);
        // 10 hosts × 10 fields: one last value each.
        assert_eq!(median(q, "values_per_query"), 100.0, "{q}");
        let full = row(&report, "backup_full_enc_on", "vmbackup").unwrap_or(&Value::Null);
        assert!(median(full, "repo_bytes") > 0.0, "{full}");
        let restored = row(&report, "restore", "vmrestore").unwrap_or(&Value::Null);
        assert!(median(restored, "data_bytes") > 0.0, "{restored}");
    } else {
        eprintln!("victoria-metrics not installed: peer columns not checked");
        assert!(stderr.contains("not installed"), "{stderr}");
    }
}

/// `--scenarios`: only the families asked for (and what they build on) run and report; an
/// unknown name is one line of error naming the valid ones, before anything runs.
#[test]
fn scenarios_filter_runs_only_what_was_asked() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let bad = Command::new(env!("CARGO_BIN_EXE_strata-bench"))
        .args(["--smoke", "--scenarios", "ingest,restor"])
        .arg("--work-dir")
        .arg(tmp.path().join("bad"))
        .output()
        .unwrap_or_else(|e| panic!("run strata-bench: {e}"));
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("'restor'") && err.contains("valid: all, ingest,"),
        "{err}"
    );
    assert!(
        !tmp.path().join("bad").join("spool").exists(),
        "it generated data first"
    );

    let strata = match strata_binary() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("SKIPPED: needs the strata binary: {e}");
            return;
        }
    };
    let json = tmp.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_strata-bench"))
        .args(["--smoke", "--no-restic", "--systems", "strata"])
        .args(["--scenarios", "restore,nothing_new_parts"])
        .arg("--strata-bin")
        .arg(&strata)
        .arg("--work-dir")
        .arg(tmp.path().join("work"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap_or_else(|e| panic!("run strata-bench: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "strata-bench failed: {stderr}");
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("read report: {e}"));
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("report JSON: {e}"));
    let mut got: Vec<&str> = report["rows"]
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r["scenario"].as_str()).collect())
        .unwrap_or_default();
    got.sort_unstable();
    // restore builds on ingest and the encrypted full backup (reported too), not on the
    // unencrypted one, the incremental ones, queries, the write load or the 10x data.
    assert_eq!(
        got,
        [
            "backup_full_enc_on",
            "backup_nothing_new_1000_parts",
            "disk",
            "disk_at_rest",
            "ingest",
            "restore",
        ],
        "{text}"
    );
    assert_eq!(
        report["config"]["scenarios"],
        serde_json::json!(["ingest", "backup", "restore", "nothing_new_parts"])
    );
    assert!(!tmp.path().join("work/spool/tenx").exists());
    assert!(!tmp.path().join("work/spool/extra").exists());
}
