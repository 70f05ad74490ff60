//! The per-loop summary printed at the end (text or `--json`).

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    #[serde(rename = "loop")]
    pub loop_name: String,
    pub seed: u64,
    pub iterations: usize,
    /// SIGKILLs that landed while the victim was running.
    pub kills: u64,
    /// Kills scheduled after the victim had already exited.
    pub finished_before_kill: u64,
    pub acked_batches: u64,
    pub points_checked: u64,
    pub lost: u64,
    pub phantom: u64,
    /// Batches partly present (must be 0: batches are atomic).
    pub torn: u64,
    /// Loop-specific counts (verifies passed, restores checked, old/new outcomes, ...).
    pub checks: BTreeMap<String, u64>,
    pub seconds: f64,
}

impl Summary {
    pub fn new(loop_name: &str, seed: u64) -> Summary {
        Summary {
            loop_name: loop_name.to_string(),
            seed,
            ..Summary::default()
        }
    }

    pub fn bump(&mut self, key: &str, n: u64) {
        *self.checks.entry(key.to_string()).or_default() += n;
    }

    pub fn add_check(&mut self, c: &crate::workload::Check) {
        self.points_checked += c.points_checked;
        self.lost += c.lost;
        self.phantom += c.phantom;
        self.torn += c.torn;
    }

    pub fn text(&self) -> String {
        let mut s = format!(
            "{}: {} iterations, {} kills ({} finished first), {} acked batches (last check), {} points checked, lost {}, phantom {}, torn {}",
            self.loop_name,
            self.iterations,
            self.kills,
            self.finished_before_kill,
            self.acked_batches,
            self.points_checked,
            self.lost,
            self.phantom,
            self.torn
        );
        for (k, v) in &self.checks {
            s.push_str(&format!(", {k} {v}"));
        }
        s.push_str(&format!("; {:.1}s, seed {}", self.seconds, self.seed));
        s
    }
}
