//! `docs/alerts.yml` is valid Prometheus alerting rules (`promtool check rules`, from the
//! Debian `prometheus` package that scripts/install-test-deps.sh installs), and every backup
//! series it watches is one the server exports.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

fn rules() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/alerts.yml")
}

#[test]
fn alert_rules_pass_promtool() {
    let promtool = Path::new("/usr/bin/promtool");
    assert!(
        promtool.exists(),
        "promtool is missing: run scripts/install-test-deps.sh"
    );
    let out = Command::new(promtool)
        .args(["check", "rules"])
        .arg(rules())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_watch_series_the_server_exports() {
    let text = std::fs::read_to_string(rules()).unwrap();
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/src/scheduler/metrics.rs"),
    )
    .unwrap();
    for series in [
        "backup_last_success_timestamp_seconds",
        "backup_last_outcome",
        "backup_repository_up",
        "backup_runs",
    ] {
        assert!(
            text.contains(&format!("strata_{series}")),
            "{series} not watched"
        );
        assert!(
            src.contains(&format!("\"{series}\"")),
            "{series} not exported"
        );
    }
}
