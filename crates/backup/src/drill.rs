//! `strata drill`: a restore drill. Restores a snapshot into a scratch directory exactly as
//! `strata restore` would (every object downloaded, decrypted and checked against its digest,
//! the staged directory checked, prepared and swapped in), then proves the result is usable:
//!
//! 1. every part is read back through the engine's decoder (every chunk's checksum and
//!    encoding, every block's row count and time range) and its per-measure content — series,
//!    points, time range, digest of series keys and block layout — compared with what the
//!    manifest recorded at backup time ([`crate::manifest::PartEntry::content`]; for manifests
//!    older than that field, the part's totals);
//! 2. the directory is opened read-only as a server would (WAL replayed) and every measure of
//!    every group is queried over all time;
//!
//! then the scratch directory is removed. The report names every difference; the drill passes
//! only if there is none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use strata_engine::backup_api::{self, MeasureContent};

use crate::crypto::random_bytes;
use crate::error::{Error, Result};
use crate::manifest::{Manifest, MeasureStats, PartEntry, safe_rel_path};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::restore::{self, RestoreOptions};

#[derive(Debug, Clone, Default)]
pub struct DrillOptions {
    /// Where to make the scratch directory (default: the system's temporary directory).
    pub scratch: Option<PathBuf>,
    /// Keep the scratch directory afterwards (to look at it).
    pub keep: bool,
    pub parallelism: usize,
}

/// One measure of one group: what the manifest recorded and what the restored data holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MeasureCheck {
    pub group: String,
    pub measure: String,
    pub parts: u64,
    /// Recorded at backup time (sums over the measure's parts).
    pub series: u64,
    pub points: u64,
    pub min_ts: Option<i64>,
    pub max_ts: Option<i64>,
    /// BLAKE3 (hex) over the recorded per-part digests, in part order.
    pub digest: Option<String>,
    /// Whether every part of the measure read back as recorded.
    pub matched: bool,
    /// What a query of the restored directory returns over all time (after last-write-wins,
    /// with the WAL replayed): `None` when the query failed.
    pub query_series: Option<u64>,
    pub query_points: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillReport {
    pub snapshot: String,
    pub node_id: String,
    /// Time of the snapshot's cut, ns since the epoch.
    pub time: i64,
    pub passed: bool,
    pub files: usize,
    pub bytes: u64,
    pub parts: usize,
    pub restore_s: f64,
    pub check_s: f64,
    pub measures: Vec<MeasureCheck>,
    /// Every difference found, one line each (empty when the drill passed).
    pub differences: Vec<String>,
    /// The scratch directory (removed unless kept).
    pub scratch: PathBuf,
    pub kept: bool,
}

/// Removes the scratch directory when dropped, unless kept.
struct Scratch {
    dir: PathBuf,
    keep: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs a drill of snapshot `spec` (an id, a unique prefix or `latest`). A restore that fails
/// (a missing or damaged object) is a failed drill, not an error: the report says what failed.
/// Errors are for what kept the drill from running (the repository, the scratch directory).
pub async fn drill(
    repo: Arc<Repository>,
    spec: &str,
    opts: &DrillOptions,
    progress: Arc<Progress>,
) -> Result<DrillReport> {
    let id = restore::resolve_snapshot(&repo, spec).await?;
    let manifest = repo.load_manifest(&id).await?;
    let base = opts.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let scratch = Scratch {
        dir: base.join(format!(
            "strata-drill-{}-{}",
            &id[..id.len().min(12)],
            hex::encode(random_bytes::<4>())
        )),
        keep: opts.keep,
    };
    std::fs::create_dir_all(&scratch.dir).map_err(|e| Error::io(&scratch.dir, e))?;
    let target = scratch.dir.join("data");
    let mut report = DrillReport {
        snapshot: id.clone(),
        node_id: manifest.node_id.clone(),
        time: manifest.time,
        passed: false,
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.size).sum(),
        parts: manifest.parts.len(),
        restore_s: 0.0,
        check_s: 0.0,
        measures: Vec::new(),
        differences: Vec::new(),
        scratch: scratch.dir.clone(),
        kept: opts.keep,
    };
    let clock = std::time::Instant::now();
    let ropts = RestoreOptions {
        parallelism: opts.parallelism.max(1),
        ..Default::default()
    };
    let restored = async {
        let plan = restore::plan_restore(&repo, &id, &target, &ropts).await?;
        restore::restore(repo.clone(), &plan, &ropts, progress.clone()).await
    }
    .await;
    report.restore_s = clock.elapsed().as_secs_f64();
    if let Err(e) = restored {
        report.differences.push(format!("restore failed: {e}"));
        report.measures = recorded(&manifest)
            .into_values()
            .map(|r| r.into_check(false))
            .collect();
        return Ok(report);
    }
    progress.set_phase("checking restored data");
    let clock = std::time::Instant::now();
    let (measures, differences) = {
        let (m, t) = (manifest.clone(), target.clone());
        tokio::task::spawn_blocking(move || check(&m, &t))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    };
    report.check_s = clock.elapsed().as_secs_f64();
    report.passed = differences.is_empty();
    report.measures = measures;
    report.differences = differences;
    progress.set_phase("done");
    Ok(report)
}

/// What the manifest recorded for one measure of one group, summed over its parts.
#[derive(Default)]
struct Recorded {
    group: String,
    measure: String,
    parts: u64,
    series: u64,
    points: u64,
    min_ts: Option<i64>,
    max_ts: Option<i64>,
    digests: Vec<String>,
    /// Whether every part recorded its per-measure content (newer manifests).
    complete: bool,
}

impl Recorded {
    fn add(&mut self, s: &MeasureStats) {
        self.parts += 1;
        self.series += s.series;
        self.points += s.points;
        self.min_ts = Some(self.min_ts.map_or(s.min_ts, |x| x.min(s.min_ts)));
        self.max_ts = Some(self.max_ts.map_or(s.max_ts, |x| x.max(s.max_ts)));
        self.digests.push(s.digest.clone());
    }

    fn into_check(self, matched: bool) -> MeasureCheck {
        let digest = (self.complete && !self.digests.is_empty()).then(|| {
            let mut h = blake3::Hasher::new();
            for d in &self.digests {
                h.update(d.as_bytes());
            }
            h.finalize().to_hex().to_string()
        });
        MeasureCheck {
            group: self.group,
            measure: self.measure,
            parts: self.parts,
            series: self.series,
            points: self.points,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
            digest,
            matched,
            query_series: None,
            query_points: None,
        }
    }
}

fn recorded(m: &Manifest) -> BTreeMap<(String, String), Recorded> {
    let mut out: BTreeMap<(String, String), Recorded> = BTreeMap::new();
    for p in &m.parts {
        let names: Vec<&str> = if p.content.is_empty() {
            p.measures.iter().map(String::as_str).collect()
        } else {
            p.content.iter().map(|c| c.measure.as_str()).collect()
        };
        for name in names {
            let r = out
                .entry((p.group.clone(), name.to_string()))
                .or_insert_with(|| Recorded {
                    group: p.group.clone(),
                    measure: name.to_string(),
                    complete: true,
                    ..Default::default()
                });
            match p.content.iter().find(|c| c.measure == name) {
                Some(c) => r.add(c),
                None => {
                    r.parts += 1;
                    r.complete = false;
                }
            }
        }
    }
    out
}

/// Compares one restored part with its manifest entry; returns the differences.
fn check_part(p: &PartEntry, got: &[MeasureContent]) -> Vec<String> {
    let mut diffs = Vec::new();
    let name = format!("part {} of group {}", p.dir, p.group);
    if p.content.is_empty() {
        // An older manifest: the part's totals.
        let rows: u64 = got.iter().map(|c| c.points).sum();
        let series: u64 = got.iter().map(|c| c.series).sum();
        if rows != p.rows || series != p.series {
            diffs.push(format!(
                "{name}: restored {series} series / {rows} points, the manifest recorded {} / {}",
                p.series, p.rows
            ));
        }
        return diffs;
    }
    for want in &p.content {
        match got.iter().find(|c| c.measure == want.measure) {
            None => diffs.push(format!(
                "{name}: measure {} is missing from the restored part",
                want.measure
            )),
            Some(c) => {
                let have = MeasureStats::from(c.clone());
                if have != *want {
                    diffs.push(format!(
                        "{name}, measure {}: restored {} series / {} points / [{}, {}] / digest \
                         {}, the manifest recorded {} / {} / [{}, {}] / {}",
                        want.measure,
                        have.series,
                        have.points,
                        have.min_ts,
                        have.max_ts,
                        &have.digest[..have.digest.len().min(16)],
                        want.series,
                        want.points,
                        want.min_ts,
                        want.max_ts,
                        &want.digest[..want.digest.len().min(16)],
                    ));
                }
            }
        }
    }
    for c in got {
        if !p.content.iter().any(|w| w.measure == c.measure) {
            diffs.push(format!(
                "{name}: holds measure {} the manifest did not record",
                c.measure
            ));
        }
    }
    diffs
}

/// Reads back every part of the restored directory `dir` and queries every measure.
fn check(m: &Manifest, dir: &Path) -> (Vec<MeasureCheck>, Vec<String>) {
    let mut differences = Vec::new();
    let mut bad: std::collections::HashSet<(String, String)> = Default::default();
    for p in &m.parts {
        let Some(rel) = safe_rel_path(&p.dir) else {
            differences.push(format!("part {}: unsafe directory name", p.dir));
            continue;
        };
        let diffs = match backup_api::check_part_content(&dir.join(rel)) {
            Ok(got) => check_part(p, &got),
            Err(e) => vec![format!(
                "part {} of group {} does not read back: {e}",
                p.dir, p.group
            )],
        };
        if !diffs.is_empty() {
            for name in &p.measures {
                bad.insert((p.group.clone(), name.clone()));
            }
            for c in &p.content {
                bad.insert((p.group.clone(), c.measure.clone()));
            }
            differences.extend(diffs);
        }
    }
    let mut checks: BTreeMap<(String, String), MeasureCheck> = recorded(m)
        .into_iter()
        .map(|(k, r)| {
            let ok = !bad.contains(&k);
            (k, r.into_check(ok))
        })
        .collect();
    match backup_api::scan_totals(dir) {
        Ok(totals) => {
            for t in totals {
                let key = (t.group.clone(), t.measure.clone());
                let c = checks.entry(key).or_insert_with(|| MeasureCheck {
                    group: t.group.clone(),
                    measure: t.measure.clone(),
                    parts: 0,
                    series: 0,
                    points: 0,
                    min_ts: None,
                    max_ts: None,
                    digest: None,
                    matched: true,
                    query_series: None,
                    query_points: None,
                });
                c.query_series = Some(t.series);
                c.query_points = Some(t.points);
            }
        }
        Err(e) => differences.push(format!("the restored directory does not open: {e}")),
    }
    // A measure the parts hold must answer queries (the WAL can only add points; last-write-
    // wins can only merge points of one series and time, never empty a series).
    // Data past its group's TTL (ttl_ns 0: kept forever) is not returned by queries: a drill
    // of an old snapshot does not expect it (with a segment's worth of slack).
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let live = |c: &MeasureCheck| {
        let Some(g) = m.catalog.groups.iter().find(|g| g.name == c.group) else {
            return false;
        };
        let s = &g.settings;
        s.ttl_ns <= 0
            || c.max_ts.is_some_and(|t| {
                t >= now
                    .saturating_sub(s.ttl_ns)
                    .saturating_sub(s.segment_interval_ns.max(0))
            })
    };
    for c in checks.values() {
        if c.points > 0 && c.query_series.is_some_and(|s| s == 0) && live(c) {
            differences.push(format!(
                "group {} measure {}: its parts hold {} points, a query of the restored data \
                 returns none",
                c.group, c.measure, c.points
            ));
        }
    }
    (checks.into_values().collect(), differences)
}
