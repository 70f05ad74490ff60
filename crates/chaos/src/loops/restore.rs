//! Restore: two snapshots of known, different content (A and B); a target data directory
//! holding one of them; `strata restore --force` of the other SIGKILLed at a random moment.
//! After each kill `strata server` must start on the target (finishing or rolling back the
//! interrupted restore) and a full query dump must equal exactly the old or exactly the new
//! data.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rand::Rng;

use super::{Ctx, remove_restore_leftovers, s};
use crate::error::{ChaosError, Result};
use crate::http::Row;
use crate::proc::KillOutcome;
use crate::summary::Summary;
use crate::upto;
use crate::workload::{Plan, Writers};

pub fn run(ctx: &Ctx) -> Result<Summary> {
    let cfg = &ctx.cfg;
    let mut rng = ctx.rng();
    let mut sum = Summary::new("restore", cfg.seed);
    let (data, repo, tgt) = (
        ctx.dir.join("data"),
        ctx.dir.join("repo"),
        ctx.dir.join("target"),
    );
    ctx.init_repo(&repo)?;
    let plan = Plan::new(
        cfg.seed,
        cfg.batch_points,
        Duration::from_secs(1_000 * 3600),
    );
    let ledger = ctx.ledger(plan, "acks.log")?;

    // Snapshot A: a little data. Snapshot B: more, partly in parts, partly in the WAL.
    let mut server = ctx.server_with_groups(&data, &plan)?;
    let target = Arc::new(RwLock::new(server.url.clone()));
    let mut snaps: Vec<(String, Vec<Row>)> = Vec::new();
    for (i, ms) in [150u64, 600].into_iter().enumerate() {
        let w = Writers::start(&ledger, &target, cfg.writers, rng.random(), Duration::ZERO)?;
        std::thread::sleep(Duration::from_millis(ms));
        w.stop()?;
        if i == 1 {
            server.stop()?;
            server = ctx.server(&data)?;
            *target.write().unwrap_or_else(|e| e.into_inner()) = server.url.clone();
            let w = Writers::start(&ledger, &target, cfg.writers, rng.random(), Duration::ZERO)?;
            std::thread::sleep(Duration::from_millis(ms));
            w.stop()?;
        }
        let rows = ctx.client.dump(&server.url)?;
        let v = ctx.strata.run_json(&[
            "backup",
            "--repo",
            s(&repo),
            "--server",
            server.url.as_str(),
            "--json",
        ])?;
        snaps.push((v["snapshot"].as_str().unwrap_or_default().to_string(), rows));
    }
    server.stop()?;
    if snaps[0].1 == snaps[1].1 {
        return Err(ChaosError::Output {
            args: "restore loop set-up".into(),
            detail: "snapshots A and B hold the same data".into(),
        });
    }

    let started = Instant::now();
    restore(ctx, &repo, &tgt, &snaps[0].0)?;
    let window = started.elapsed().mul_f64(1.5);
    let mut current = 0usize;
    for it in 0..cfg.iterations {
        let want = 1 - current;
        let args = [
            "restore",
            "--repo",
            s(&repo),
            "--data-dir",
            s(&tgt),
            "--snapshot",
            snaps[want].0.as_str(),
            "--force",
        ];
        let outcome = ctx.strata.kill_after(&args, upto(&mut rng, window))?;
        match outcome {
            KillOutcome::Killed => sum.kills += 1,
            KillOutcome::Finished { success: true, .. } => sum.finished_before_kill += 1,
            KillOutcome::Finished { success: false, .. } => {
                return Err(ctx.violation(it, "strata restore failed before any kill"));
            }
        }
        let server = ctx.server(&tgt).map_err(|e| {
            ctx.violation(
                it,
                format!("strata server does not start on the target after a killed restore: {e}"),
            )
        })?;
        let rows = ctx.client.dump(&server.url)?;
        server.stop()?;
        sum.points_checked += rows.len() as u64;
        if rows == snaps[want].1 {
            sum.bump("target_is_new", 1);
            current = want;
        } else if rows == snaps[current].1 {
            if matches!(outcome, KillOutcome::Finished { success: true, .. }) {
                return Err(ctx.violation(it, "a restore that completed left the old data"));
            }
            sum.bump("target_is_old", 1);
        } else {
            return Err(ctx.violation(
                it,
                format!(
                    "target holds neither snapshot: {} rows (old {}, new {})",
                    rows.len(),
                    snaps[current].1.len(),
                    snaps[want].1.len()
                ),
            ));
        }
        sum.bump("stale_staging_dirs_seen", staging_dirs(&tgt)? as u64);
        remove_restore_leftovers(&tgt)?;
        sum.iterations = it + 1;
        ctx.progress(&sum);
    }
    // And a restore that is left alone completes.
    let want = 1 - current;
    restore(ctx, &repo, &tgt, &snaps[want].0)?;
    let server = ctx.server(&tgt)?;
    let rows = ctx.client.dump(&server.url)?;
    server.stop()?;
    if rows != snaps[want].1 {
        return Err(ctx.violation(
            cfg.iterations,
            "a complete restore does not hold its snapshot's data",
        ));
    }
    Ok(sum)
}

fn restore(ctx: &Ctx, repo: &Path, tgt: &Path, id: &str) -> Result<()> {
    ctx.strata.run_ok(&[
        "restore",
        "--repo",
        s(repo),
        "--data-dir",
        s(tgt),
        "--snapshot",
        id,
        "--force",
    ])?;
    remove_restore_leftovers(tgt)
}

/// Staging directories (`.DIR.restore-*`) left beside the target by killed restores.
fn staging_dirs(tgt: &Path) -> Result<usize> {
    let (Some(parent), Some(name)) = (tgt.parent(), tgt.file_name()) else {
        return Ok(0);
    };
    let prefix = format!(".{}.restore-", name.to_string_lossy());
    Ok(std::fs::read_dir(parent)
        .map_err(ChaosError::io(format!("list {}", parent.display())))?
        .flatten()
        // Staging copies are directories; the journal is a file.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .count())
}
