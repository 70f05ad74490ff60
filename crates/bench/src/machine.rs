//! What the figures were measured on: CPU, memory, kernel, filesystem, tool versions, date.

use std::path::Path;
use std::process::Command;

fn cmd(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn cpuinfo(field: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == field).then(|| v.trim().to_string())
    })
}

pub fn describe(work: &Path, strata_bin: &Path) -> serde_json::Value {
    let mem_kb = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    });
    serde_json::json!({
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": cpuinfo("model name"),
        "mem_gib": mem_kb.map(|k| (k as f64 / 1048576.0 * 10.0).round() / 10.0),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_string()),
        "filesystem": cmd("stat", &["-f", "-c", "%T", &work.to_string_lossy()]),
        "strata_version": cmd(&strata_bin.to_string_lossy(), &["--version"]),
        // The Debian build prints an empty -version; the package version says which it is.
        "victoria_metrics_version": cmd("dpkg-query", &["-W", "-f", "${Version}", "victoria-metrics"]),
        "restic_version": cmd("restic", &["version"]),
    })
}
