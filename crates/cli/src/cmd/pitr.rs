//! The point-in-time pieces of `strata restore --at` and `strata snapshots`: parsing TIME,
//! describing the plan, listing the windows.

use strata_backup::archive::pitr::PitrPlan;
use strata_backup::archive::window::{Windows, rfc3339};

use super::repo::fmt_bytes;

pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// `--at`: an RFC 3339 time (`2026-01-02T03:04:05Z`, offsets and fractions allowed) or a
/// duration ago (`15m`, `90s`, `2h`).
pub fn parse_at(s: &str, now: i64) -> anyhow::Result<i64> {
    let t = s.trim();
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return dt.timestamp_nanos_opt().ok_or_else(|| {
            anyhow::anyhow!("--at '{s}': outside the representable range of times")
        });
    }
    match strata_engine::duration::parse(t) {
        Ok(d) => {
            let ago = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
            Ok(now.saturating_sub(ago))
        }
        Err(_) => anyhow::bail!(
            "--at '{s}': expected an RFC 3339 time (e.g. 2026-01-02T03:04:05Z) or a duration ago (e.g. 15m)"
        ),
    }
}

pub fn describe(p: &PitrPlan) -> String {
    format!(
        "point in time {}: snapshot {} (LSN {}) + {} archived batches from {} objects ({}) of node {}; last batch included: {}",
        p.at,
        p.snapshot,
        p.snapshot_lsn,
        p.batches,
        p.objects.len(),
        fmt_bytes(p.archive_bytes),
        p.node,
        match (&p.last_lsn, &p.last_commit) {
            (Some(l), Some(t)) => format!("LSN {l} committed {t}"),
            _ => "none after the snapshot".to_string(),
        }
    )
}

/// Windows and gaps as JSON.
pub fn windows_json(w: &Windows) -> serde_json::Value {
    let windows: Vec<_> = w
        .windows
        .iter()
        .map(|w| {
            serde_json::json!({
                "node_id": w.node, "chain": w.chain,
                "start": rfc3339(w.start_ns), "end": rfc3339(w.end_ns),
                "start_ns": w.start_ns, "end_ns": w.end_ns,
                "first_lsn": w.first_lsn, "last_lsn": w.last_lsn,
                "snapshots": w.anchors.iter().map(|a| &a.0).collect::<Vec<_>>(),
                "objects": w.objects.len(),
            })
        })
        .collect();
    let gaps: Vec<_> = w
        .gaps
        .iter()
        .map(|g| {
            serde_json::json!({
                "node_id": g.node, "from": rfc3339(g.from_ns), "to": rfc3339(g.to_ns),
                "after_lsn": g.after_lsn, "resume_lsn": g.resume_lsn,
            })
        })
        .collect();
    serde_json::json!({"windows": windows, "gaps": gaps})
}

pub fn print_windows(w: &Windows) {
    if w.windows.is_empty() {
        println!("point-in-time windows: none (no archived WAL continues a snapshot)");
        return;
    }
    println!("point-in-time windows:");
    for x in &w.windows {
        println!(
            "  node {}: {} .. {} (LSN {}..{}, {} snapshots, {} archive objects)",
            x.node,
            rfc3339(x.start_ns),
            rfc3339(x.end_ns),
            x.first_lsn,
            x.last_lsn,
            x.anchors.len(),
            x.objects.len()
        );
    }
    for g in &w.gaps {
        println!(
            "  GAP node {}: nothing recoverable between {} (LSN {}) and {} (LSN {})",
            g.node,
            rfc3339(g.from_ns),
            g.after_lsn,
            rfc3339(g.to_ns),
            g.resume_lsn
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn at_takes_rfc3339_or_a_duration_ago_and_refuses_the_rest() {
        let now = 1_800_000_000_000_000_000;
        assert_eq!(parse_at("15m", now).unwrap(), now - 900_000_000_000);
        assert_eq!(
            parse_at("2026-01-01T00:00:00Z", now).unwrap(),
            1_767_225_600_000_000_000
        );
        assert_eq!(
            parse_at("2026-01-01T01:00:00.5+01:00", now).unwrap(),
            1_767_225_600_500_000_000
        );
        for bad in ["yesterday", "", "2026-13-01T00:00:00Z", "-5m"] {
            let e = parse_at(bad, now).unwrap_err().to_string();
            assert!(e.starts_with("--at"), "{bad}: {e}");
        }
    }
}
