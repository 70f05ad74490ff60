//! Turns the records of all repetitions into the report: per (scenario, system, metric) the
//! median and min/max over repetitions, and Strata/peer ratios computed pair by pair (same
//! repetition) before summarizing. Written as JSON and as Markdown table rows.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::pipeline::Record;
use crate::stats::{Summary, summarize};

#[derive(Debug, serde::Serialize)]
pub struct Row {
    pub scenario: String,
    pub system: String,
    pub metrics: BTreeMap<String, Summary>,
    /// Set when no repetition produced figures: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct Ratio {
    pub scenario: String,
    /// e.g. "strata/vm".
    pub pair: String,
    pub metrics: BTreeMap<String, Summary>,
}

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub machine: serde_json::Value,
    pub config: serde_json::Value,
    pub rows: Vec<Row>,
    pub ratios: Vec<Ratio>,
    pub records: Vec<Record>,
}

/// Scenario order in the report: first appearance in the records.
fn scenarios(records: &[Record]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in records {
        if !v.contains(&r.scenario) {
            v.push(r.scenario.clone());
        }
    }
    v
}

pub fn build(
    records: Vec<Record>,
    machine: serde_json::Value,
    config: serde_json::Value,
) -> Report {
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for sc in scenarios(&records) {
        let of_sc: Vec<&Record> = records.iter().filter(|r| r.scenario == sc).collect();
        let mut systems: Vec<&str> = Vec::new();
        for r in &of_sc {
            if !systems.contains(&r.system.as_str()) {
                systems.push(&r.system);
            }
        }
        for sys in &systems {
            let runs: Vec<&&Record> = of_sc.iter().filter(|r| r.system == *sys).collect();
            let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for r in runs.iter().filter(|r| r.skipped.is_none()) {
                for (k, v) in &r.metrics {
                    values.entry(k.clone()).or_default().push(*v);
                }
            }
            let metrics: BTreeMap<String, Summary> = values
                .into_iter()
                .filter_map(|(k, v)| summarize(&v).map(|s| (k, s)))
                .collect();
            let skipped = if metrics.is_empty() {
                runs.iter().find_map(|r| r.skipped.clone())
            } else {
                None
            };
            rows.push(Row {
                scenario: sc.clone(),
                system: sys.to_string(),
                metrics,
                skipped,
            });
        }
        // Strata against each peer, repetition by repetition.
        for peer in systems.iter().filter(|s| **s != "strata") {
            let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for a in of_sc
                .iter()
                .filter(|r| r.system == "strata" && r.skipped.is_none())
            {
                let Some(b) = of_sc
                    .iter()
                    .find(|r| r.system == *peer && r.rep == a.rep && r.skipped.is_none())
                else {
                    continue;
                };
                for (k, va) in &a.metrics {
                    if let Some(vb) = b.metrics.get(k)
                        && *vb != 0.0
                    {
                        values.entry(k.clone()).or_default().push(va / vb);
                    }
                }
            }
            let metrics: BTreeMap<String, Summary> = values
                .into_iter()
                .filter_map(|(k, v)| summarize(&v).map(|s| (k, s)))
                .collect();
            if !metrics.is_empty() {
                ratios.push(Ratio {
                    scenario: sc.clone(),
                    pair: format!("strata/{peer}"),
                    metrics,
                });
            }
        }
    }
    Report {
        machine,
        config,
        rows,
        ratios,
        records,
    }
}

/// A figure with three significant digits, or in exponent form when huge.
fn num(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() {
        "n/a".into()
    } else if a >= 1e7 {
        format!("{x:.3e}")
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn cell(s: &Summary) -> String {
    if s.n > 1 {
        format!("{} ({}–{})", num(s.median), num(s.min), num(s.max))
    } else {
        num(s.median)
    }
}

fn metrics_cell(m: &BTreeMap<String, Summary>) -> String {
    m.iter()
        .map(|(k, s)| format!("{k} {}", cell(s)))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Report {
    /// Markdown: one row per scenario and system, then one per Strata/peer ratio.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "| scenario | system | figures: median (min–max) |");
        let _ = writeln!(md, "|---|---|---|");
        for r in &self.rows {
            let figures = match &r.skipped {
                Some(why) => format!("skipped: {}", why.replace('|', "\\|").replace('\n', " ")),
                None => metrics_cell(&r.metrics),
            };
            let _ = writeln!(md, "| {} | {} | {} |", r.scenario, r.system, figures);
        }
        if !self.ratios.is_empty() {
            let _ = writeln!(md);
            let _ = writeln!(
                md,
                "| scenario | ratio | per-repetition ratios: median (min–max) |"
            );
            let _ = writeln!(md, "|---|---|---|");
            for r in &self.ratios {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} |",
                    r.scenario,
                    r.pair,
                    metrics_cell(&r.metrics)
                );
            }
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(rep: usize, sc: &str, sys: &str, v: f64, skipped: Option<&str>) -> Record {
        Record {
            rep,
            scenario: sc.into(),
            system: sys.into(),
            metrics: if skipped.is_some() {
                BTreeMap::new()
            } else {
                [("points_per_s".to_string(), v)].into()
            },
            skipped: skipped.map(str::to_string),
        }
    }

    #[test]
    fn medians_ratios_pair_by_rep_and_skips_show() {
        let records = vec![
            rec(0, "ingest", "strata", 200.0, None),
            rec(0, "ingest", "vm", 100.0, None),
            rec(1, "ingest", "vm", 400.0, None),
            rec(1, "ingest", "strata", 400.0, None),
            rec(2, "ingest", "strata", 300.0, None),
            rec(0, "restore", "strata", 0.0, Some("exit 1: not implemented")),
        ];
        let r = build(records, serde_json::json!({}), serde_json::json!({}));
        let strata = &r.rows[0];
        assert_eq!(strata.system, "strata");
        let s = strata.metrics["points_per_s"];
        assert_eq!((s.median, s.min, s.max, s.n), (300.0, 200.0, 400.0, 3));
        // Rep 2 has no vm run: ratios come from reps 0 (2.0) and 1 (1.0) only.
        let ratio = r.ratios[0].metrics["points_per_s"];
        assert_eq!((ratio.median, ratio.n), (1.5, 2));
        assert_eq!(r.ratios[0].pair, "strata/vm");
        let md = r.markdown();
        assert!(
            md.contains("| restore | strata | skipped: exit 1: not implemented |"),
            "{md}"
        );
        assert!(
            md.contains("| ingest | strata/vm | points_per_s 1.50 (1.00–2.00) |"),
            "{md}"
        );
    }
}
