//! Prune: a repository with many snapshots of known content, `strata prune --keep-last K
//! --grace 0s` SIGKILLed at a random moment. After each kill: `verify --all --read-data` passes,
//! no manifest is damaged, the K newest snapshots are all still there, the newest and one other
//! surviving snapshot restore to exactly the data they were taken of, and a new prune completes
//! (leaving exactly the K newest, which verify again). Each prune races a `strata backup`
//! (killed at a random moment too, or left to finish): every kept snapshot, the racing
//! backup's included, still verifies and restores.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rand::Rng;

use super::{Ctx, s};
use crate::error::Result;
use crate::proc::{KillOutcome, Server};
use crate::summary::Summary;
use crate::upto;
use crate::workload::{BatchId, Ledger, Plan, Writers, now_ns};

const KEEP: usize = 3;

struct Snap {
    id: String,
    acked: HashSet<BatchId>,
}

pub fn run(ctx: &Ctx) -> Result<Summary> {
    let cfg = &ctx.cfg;
    let mut rng = ctx.rng();
    let mut sum = Summary::new("prune", cfg.seed);
    let (data, repo) = (ctx.dir.join("data"), ctx.dir.join("repo"));
    ctx.init_repo(&repo)?;
    let plan = Plan::new(
        cfg.seed,
        cfg.batch_points,
        Duration::from_secs(1_000 * 3600),
    );
    let ledger = ctx.ledger(plan, "acks.log")?;
    let server = ctx.server_with_groups(&data, &plan)?;
    let target = Arc::new(RwLock::new(server.url.clone()));
    let mut snaps = Vec::new();
    for _ in 0..KEEP + 3 {
        snaps.push(snapshot(ctx, &server, &repo, &ledger, &target, &mut rng)?);
    }
    // Grows to 1.2x the longest prune seen (a prune that finished before its kill was due).
    let mut window = Duration::from_millis(50);
    let prune = [
        "prune",
        "--repo",
        s(&repo),
        "--keep-last",
        "3",
        "--grace",
        "0s",
    ];
    for it in 0..cfg.iterations {
        for _ in 0..2 {
            snaps.push(snapshot(ctx, &server, &repo, &ledger, &target, &mut rng)?);
        }
        // A backup races the prune (the known hole: it reuses objects of a parent the prune
        // may delete); it is killed at a random moment too, or left to finish.
        let racer = {
            let strata = ctx.strata.clone();
            let args: Vec<String> = [
                "backup",
                "--repo",
                s(&repo),
                "--server",
                server.url.as_str(),
            ]
            .iter()
            .map(|a| a.to_string())
            .collect();
            let delay = if rng.random_bool(0.5) {
                upto(&mut rng, window.mul_f64(2.0))
            } else {
                Duration::from_secs(600)
            };
            std::thread::spawn(move || {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                strata.kill_after(&a, delay)
            })
        };
        let pruned = ctx.strata.kill_after(&prune, upto(&mut rng, window))?;
        match racer.join() {
            Ok(Ok(KillOutcome::Killed)) => sum.bump("racing_backups_killed", 1),
            Ok(Ok(KillOutcome::Finished { success: true, .. })) => {
                sum.bump("racing_backups_completed", 1)
            }
            Ok(Ok(KillOutcome::Finished { success: false, .. })) => {
                return Err(ctx.violation(it, "a backup racing prune failed"));
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(ctx.violation(it, "the racing backup thread panicked")),
        }
        // A racing backup that completed is one more snapshot (writers were stopped: it holds
        // exactly what was acked).
        let (ids, _) = ctx.snapshots(&repo)?;
        for id in ids {
            if !id.is_empty() && !snaps.iter().any(|s| s.id == id) {
                snaps.push(Snap {
                    id,
                    acked: ledger.acked(),
                });
            }
        }
        match pruned {
            KillOutcome::Killed => sum.kills += 1,
            KillOutcome::Finished {
                success: true,
                took,
            } => {
                sum.finished_before_kill += 1;
                // Aim the next kills at the whole run of a prune that had work to do.
                window = window.max(took.mul_f64(1.2));
            }
            KillOutcome::Finished { success: false, .. } => {
                return Err(ctx.violation(it, "strata prune failed before any kill"));
            }
        }
        check_repo(ctx, &repo, &ledger, &snaps, it, &mut sum, &mut rng)?;
        ctx.strata
            .run_ok(&prune)
            .map_err(|e| ctx.violation(it, format!("prune after a kill did not complete: {e}")))?;
        sum.bump("prunes_completed", 1);
        let (ids, _) = ctx.snapshots(&repo)?;
        let newest: Vec<String> = snaps[snaps.len() - KEEP..]
            .iter()
            .map(|s| s.id.clone())
            .collect();
        if ids != newest {
            return Err(ctx.violation(it, format!("after a complete prune the repository holds {ids:?}, expected the {KEEP} newest {newest:?}")));
        }
        if let Err(d) = ctx.verify_all(&repo)? {
            return Err(ctx.violation(it, format!("after a complete prune: {d}")));
        }
        snaps.retain(|s| ids.contains(&s.id));
        sum.iterations = it + 1;
        ctx.progress(&sum);
    }
    server.stop()?;
    Ok(sum)
}

/// Writes for a moment (writers stopped, so the snapshot holds exactly the acked batches), then
/// `strata backup --server`.
fn snapshot(
    ctx: &Ctx,
    server: &Server,
    repo: &Path,
    ledger: &Arc<Ledger>,
    target: &Arc<RwLock<String>>,
    rng: &mut impl Rng,
) -> Result<Snap> {
    let w = Writers::start(
        ledger,
        target,
        ctx.cfg.writers.min(2),
        rng.random(),
        Duration::ZERO,
    )?;
    std::thread::sleep(Duration::from_millis(rng.random_range(20..120)));
    w.stop()?;
    let v = ctx.strata.run_json(&[
        "backup",
        "--repo",
        s(repo),
        "--server",
        server.url.as_str(),
        "--json",
    ])?;
    Ok(Snap {
        id: v["snapshot"].as_str().unwrap_or_default().to_string(),
        acked: ledger.acked(),
    })
}

fn check_repo(
    ctx: &Ctx,
    repo: &Path,
    ledger: &Ledger,
    snaps: &[Snap],
    it: usize,
    sum: &mut Summary,
    rng: &mut impl Rng,
) -> Result<()> {
    if let Err(d) = ctx.verify_all(repo)? {
        return Err(ctx.violation(it, format!("after killing prune: {d}")));
    }
    sum.bump("verifies_passed", 1);
    let (ids, damaged) = ctx.snapshots(repo)?;
    if !damaged.is_empty() {
        return Err(ctx.violation(
            it,
            format!("damaged manifests after killing prune: {damaged:?}"),
        ));
    }
    for s in &snaps[snaps.len() - KEEP..] {
        if !ids.contains(&s.id) {
            return Err(ctx.violation(it, format!("prune removed kept snapshot {}", s.id)));
        }
    }
    let surviving: Vec<&Snap> = snaps.iter().filter(|s| ids.contains(&s.id)).collect();
    sum.bump(
        "snapshots_left_by_killed_prunes",
        surviving.len().saturating_sub(KEEP) as u64,
    );
    let mut check = vec![surviving[surviving.len() - 1]];
    let other = surviving[rng.random_range(0..surviving.len())];
    if other.id != check[0].id {
        check.push(other);
    }
    for snap in check {
        let rows = ctx.restore_and_dump(repo, &snap.id)?;
        // The exact content: every batch acked before the backup, and nothing else.
        let c = ledger.check(&rows, Some(&snap.acked), Some(&snap.acked), now_ns());
        sum.add_check(&c);
        sum.acked_batches = c.acked_batches;
        if !c.ok() {
            return Err(ctx.violation(
                it,
                format!(
                    "snapshot {} restores to other data: {}",
                    snap.id,
                    c.problems.join("; ")
                ),
            ));
        }
        sum.bump("snapshots_restored_and_checked", 1);
    }
    Ok(())
}
