//! Backup: `strata server` under write load, `strata backup --server URL` into a local
//! repository, and a SIGKILL at a random moment, usually of the backup and one time in four of
//! the server while the backup runs through it. After each kill: `verify --all --read-data`
//! passes (every completed snapshot is whole); the next backup completes and reuses what the
//! killed one uploaded (its new objects are exactly the objects that appear in the repository,
//! nothing is uploaded twice); every fifth snapshot is restored and holds every batch
//! acknowledged before it began, whole, and nothing never written. After a server kill the
//! server's own data is checked as in the ingest loop.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;

use super::{Ctx, data_objects, s};
use crate::error::{ChaosError, Result};
use crate::proc::{KillOutcome, kill_child_after};
use crate::summary::Summary;
use crate::upto;
use crate::workload::{Plan, Writers, now_ns};

/// Kills per data directory and repository: bounds what each `verify --read-data` reads.
const EPOCH: usize = 25;

pub fn run(ctx: &Ctx) -> Result<Summary> {
    let cfg = &ctx.cfg;
    let mut rng = ctx.rng();
    let mut sum = Summary::new("backup", cfg.seed);
    let mut first = 0;
    while first < cfg.iterations {
        let last = (first + EPOCH).min(cfg.iterations);
        let dir = ctx.dir.join(format!("epoch-{first}"));
        std::fs::create_dir_all(&dir)
            .map_err(ChaosError::io(format!("create {}", dir.display())))?;
        epoch(ctx, &dir, first..last, &mut rng, &mut sum)?;
        std::fs::remove_dir_all(&dir)
            .map_err(ChaosError::io(format!("remove {}", dir.display())))?;
        first = last;
    }
    Ok(sum)
}

fn epoch(
    ctx: &Ctx,
    dir: &Path,
    its: std::ops::Range<usize>,
    rng: &mut StdRng,
    sum: &mut Summary,
) -> Result<()> {
    let cfg = &ctx.cfg;
    let pace = cfg.pace;
    let (data, repo) = (dir.join("data"), dir.join("repo"));
    ctx.init_repo(&repo)?;
    let plan = Plan::new(
        cfg.seed ^ its.start as u64,
        cfg.batch_points,
        Duration::from_secs(1_000 * 3600),
    );
    let ledger = ctx.ledger(plan, &format!("acks-{}.log", its.start))?;
    let mut server = ctx.server_with_groups(&data, &plan)?;
    let target = Arc::new(RwLock::new(server.url.clone()));
    // Some parts first (a graceful stop flushes), so backups have immutable files to reuse.
    let mut writers = Writers::start(&ledger, &target, cfg.writers, rng.random(), pace)?;
    std::thread::sleep(Duration::from_millis(400));
    writers.stop()?;
    server.stop()?;
    server = ctx.server(&data)?;
    set(&target, &server.url);
    writers = Writers::start(&ledger, &target, cfg.writers, rng.random(), pace)?;
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    complete_backup(ctx, &repo, &server.url, its.start, sum)?;
    let window = started
        .elapsed()
        .mul_f64(1.5)
        .max(Duration::from_millis(50));

    for it in its.clone() {
        let before = data_objects(&repo)?;
        let args = [
            "backup",
            "--repo",
            s(&repo),
            "--server",
            server.url.as_str(),
            "--json",
        ];
        let delay = upto(rng, window);
        if rng.random_bool(0.25) {
            // Kill the server while a backup is being taken through it.
            let mut child = ctx.strata.spawn(&args)?;
            std::thread::sleep(delay);
            writers.stop()?;
            server.kill();
            sum.kills += 1;
            sum.bump("server_kills", 1);
            // The backup either had its snapshot already (it goes on from the hard links) or
            // fails cleanly; both are fine, a hang is not (bounded by the kill below).
            match kill_child_after(&mut child, Duration::from_secs(120)) {
                KillOutcome::Finished { success: true, .. } => {
                    sum.bump("backups_outliving_server", 1)
                }
                KillOutcome::Finished { success: false, .. } => {
                    sum.bump("backups_failed_with_server", 1)
                }
                KillOutcome::Killed => {
                    return Err(ctx.violation(it, "backup hung after the server died"));
                }
            }
            server = ctx.server(&data).map_err(|e| {
                ctx.violation(it, format!("server restart after SIGKILL failed: {e}"))
            })?;
            set(&target, &server.url);
            let rows = ctx.client.dump(&server.url)?;
            let c = ledger.check(&rows, None, None, now_ns());
            sum.add_check(&c);
            sum.acked_batches = c.acked_batches;
            if !c.ok() {
                return Err(ctx.violation(
                    it,
                    format!("server data after SIGKILL: {}", c.problems.join("; ")),
                ));
            }
            writers = Writers::start(&ledger, &target, cfg.writers, rng.random(), pace)?;
        } else {
            match ctx.strata.kill_after(&args, delay)? {
                KillOutcome::Killed => sum.kills += 1,
                KillOutcome::Finished { success: true, .. } => sum.finished_before_kill += 1,
                KillOutcome::Finished { success: false, .. } => {
                    return Err(ctx.violation(it, "strata backup failed before any kill"));
                }
            }
        }
        if let Err(d) = ctx.verify_all(&repo)? {
            return Err(ctx.violation(it, d));
        }
        sum.bump("verifies_passed", 1);
        let orphans = data_objects(&repo)?.len().saturating_sub(before.len());
        sum.bump("objects_left_by_killed_backups", orphans as u64);
        let acked_before = ledger.acked();
        let id = complete_backup(ctx, &repo, &server.url, it, sum)?;
        if it % 5 == 4 || it + 1 == its.end {
            let rows = ctx.restore_and_dump(&repo, &id)?;
            let c = ledger.check(&rows, Some(&acked_before), None, now_ns());
            sum.add_check(&c);
            if !c.ok() {
                return Err(ctx.violation(
                    it,
                    format!("restored snapshot {id}: {}", c.problems.join("; ")),
                ));
            }
            sum.bump("snapshots_restored_and_checked", 1);
        }
        if rng.random_bool(0.2) {
            // New parts now and then (and merges once a shard has six).
            writers.stop()?;
            server.stop()?;
            server = ctx.server(&data)?;
            set(&target, &server.url);
            writers = Writers::start(&ledger, &target, cfg.writers, rng.random(), pace)?;
        }
        sum.iterations = it + 1;
        ctx.progress(sum);
    }
    writers.stop()?;
    server.stop()?;
    Ok(())
}

/// A backup that must complete and reuse what is in the repository: its count of new objects
/// equals the objects that appeared, so nothing a killed backup left was uploaded again.
fn complete_backup(
    ctx: &Ctx,
    repo: &Path,
    url: &str,
    it: usize,
    sum: &mut Summary,
) -> Result<String> {
    let before = data_objects(repo)?;
    let v = ctx
        .strata
        .run_json(&["backup", "--repo", s(repo), "--server", url, "--json"])
        .map_err(|e| ctx.violation(it, format!("the backup after a kill did not complete: {e}")))?;
    let after = data_objects(repo)?;
    let appeared: u64 = after.keys().filter(|k| !before.contains_key(*k)).count() as u64;
    let appeared_bytes: u64 = after
        .iter()
        .filter(|(k, _)| !before.contains_key(*k))
        .map(|(_, n)| n)
        .sum();
    let st = &v["stats"];
    let num = |k: &str| st[k].as_u64().unwrap_or(0);
    if num("new_objects") != appeared {
        return Err(ctx.violation(
            it,
            format!(
                "backup reports {} new objects but {appeared} appeared in the repository (objects uploaded twice?): {v}",
                num("new_objects")
            ),
        ));
    }
    sum.bump("backups_completed", 1);
    sum.bump("backup_bytes_total", num("bytes"));
    sum.bump("backup_uploaded_bytes", num("uploaded_bytes"));
    sum.bump("backup_reused_objects", num("reused_objects"));
    sum.bump("backup_new_object_bytes_on_disk", appeared_bytes);
    Ok(v["snapshot"].as_str().unwrap_or_default().to_string())
}

fn set(target: &RwLock<String>, url: &str) {
    *target.write().unwrap_or_else(|e| e.into_inner()) = url.to_string();
}
