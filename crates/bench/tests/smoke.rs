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

    // VictoriaMetrics: the harness must get real figures out of it in every scenario.
    if installed("victoria-metrics") && installed("vmbackup") && installed("vmrestore") {
        for sc in scenarios {
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
