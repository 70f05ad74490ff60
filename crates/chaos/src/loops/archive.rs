//! Archive: `strata server` archives WAL continuously (`--archive`, frequent idle flushes so the
//! archive hold is exercised) under concurrent writers, and each iteration SIGKILLs three
//! things at seeded random moments:
//!
//! - **`prune --keep-last 1 --grace 0s`** while the server archives (and, half the time, after
//!   a `backup --server` made a newer snapshot), so archive retention races the archiver;
//! - **the server** itself, mid-archiving;
//! - **`restore --at T2 --force`** over a target that holds an earlier point `T1`.
//!
//! After the server kill, `strata snapshots` must show exactly one point-in-time window and no
//! gap, and `restore --at T1` (a random instant in the window, or its end) must hold every
//! batch acknowledged at or before `T1` and nothing sent after it, whole batches only. After the
//! killed restore, a server started on the target must find exactly the `T1` data or the `T2`
//! data. The server then restarts on its data directory (the archiver resumes from its cursor),
//! which must still hold every acknowledged batch.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;

use super::{Ctx, remove_restore_leftovers, s};
use crate::error::Result;
use crate::http::Row;
use crate::proc::{KillOutcome, Server};
use crate::summary::Summary;
use crate::upto;
use crate::workload::{Ledger, Plan, Writers, now_ns};

/// How long the server may take to start its archive chain (a backup).
const CHAIN_START_TIMEOUT: Duration = Duration::from_secs(120);

pub fn run(ctx: &Ctx) -> Result<Summary> {
    let cfg = &ctx.cfg;
    let mut rng = ctx.rng();
    let mut sum = Summary::new("archive", cfg.seed);
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
    let mut server = start(ctx, &data, &repo, Some(&plan))?;
    wait_for_chain(ctx, &server)?;
    let target = Arc::new(RwLock::new(server.url.clone()));
    // Kill delays: up to 1.5x the longest prune / restore seen completing.
    let mut prune_window = Duration::from_millis(300);
    let mut restore_window = Duration::from_millis(500);
    let mut rpo_max_ms = 0u64;
    for it in 0..cfg.iterations {
        let writers = Writers::start(&ledger, &target, cfg.writers, rng.random(), cfg.pace)?;
        std::thread::sleep(Duration::from_millis(200) + upto(&mut rng, Duration::from_millis(800)));
        if rng.random_bool(0.5) {
            let url = server.url.clone();
            ctx.strata
                .run_ok(&["backup", "--repo", s(&repo), "--server", &url])
                .map_err(|e| ctx.violation(it, format!("backup beside the archiver: {e}")))?;
            sum.bump("backups_taken", 1);
        }
        if rng.random_bool(0.6) {
            let prune = [
                "prune",
                "--repo",
                s(&repo),
                "--keep-last",
                "1",
                "--grace",
                "0s",
            ];
            match ctx
                .strata
                .kill_after(&prune, upto(&mut rng, prune_window))?
            {
                KillOutcome::Killed => {
                    sum.kills += 1;
                    sum.bump("prune_kills", 1);
                }
                KillOutcome::Finished {
                    success: true,
                    took,
                } => {
                    sum.finished_before_kill += 1;
                    sum.bump("prunes_completed", 1);
                    prune_window = prune_window.max(took.mul_f64(1.5));
                }
                KillOutcome::Finished { success: false, .. } => {
                    return Err(ctx.violation(it, "prune failed beside the archiver"));
                }
            }
        }
        std::thread::sleep(upto(&mut rng, Duration::from_millis(500)));
        let last_ack = ledger.last_ack_ns();
        if !server.is_running() {
            return Err(ctx.violation(it, "the server exited on its own while archiving"));
        }
        server.kill();
        sum.kills += 1;
        sum.bump("server_kills", 1);
        writers.stop()?;

        let (start_ns, end_ns) = window(ctx, &repo, it)?;
        if let Some(a) = last_ack {
            rpo_max_ms = rpo_max_ms.max((a.saturating_sub(end_ns)).max(0) as u64 / 1_000_000);
        }
        let t1 = pick(&mut rng, start_ns, end_ns);
        let clock = std::time::Instant::now();
        restore_at(ctx, &repo, &tgt, t1).map_err(|e| {
            ctx.violation(it, format!("the window claims {} but: {e}", rfc3339(t1)))
        })?;
        restore_window = restore_window.max(clock.elapsed().mul_f64(1.5));
        let old = dump(ctx, &tgt, it)?;
        check(ctx, &ledger, &old, t1, it, &mut sum, "restore --at")?;
        sum.bump("restores_at_checked", 1);

        let t2 = pick(&mut rng, start_ns, end_ns);
        let at = rfc3339(t2);
        let args = [
            "restore",
            "--repo",
            s(&repo),
            "--data-dir",
            s(&tgt),
            "--at",
            &at,
            "--force",
        ];
        let outcome = ctx
            .strata
            .kill_after(&args, upto(&mut rng, restore_window))?;
        let rows = dump(ctx, &tgt, it)?;
        match outcome {
            KillOutcome::Killed => {
                sum.kills += 1;
                sum.bump("restore_at_kills", 1);
            }
            KillOutcome::Finished {
                success: true,
                took,
            } => {
                sum.finished_before_kill += 1;
                restore_window = restore_window.max(took.mul_f64(1.2));
            }
            KillOutcome::Finished { success: false, .. } => {
                return Err(ctx.violation(it, format!("restore --at {t2} failed before any kill")));
            }
        }
        let (required, allowed) = ledger.cut_at(t2);
        let is_new = ledger
            .check(&rows, Some(&required), Some(&allowed), t2)
            .ok();
        if rows == old && !matches!(outcome, KillOutcome::Finished { success: true, .. }) {
            sum.bump("target_is_old", 1);
        } else if is_new {
            sum.bump("target_is_new", 1);
        } else {
            return Err(ctx.violation(
                it,
                format!(
                    "after a killed restore --at the target holds neither point ({} rows; old {} rows)",
                    rows.len(),
                    old.len()
                ),
            ));
        }
        remove_restore_leftovers(&tgt)?;

        // The archiver resumes from its cursor; the data directory still holds every ack.
        server = start(ctx, &data, &repo, None)
            .map_err(|e| ctx.violation(it, format!("restart after SIGKILL failed: {e}")))?;
        *target.write().unwrap_or_else(|e| e.into_inner()) = server.url.clone();
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
        sum.iterations = it + 1;
        ctx.progress(&sum);
    }
    server.stop()?;
    sum.checks.insert("rpo_max_ms".into(), rpo_max_ms);
    Ok(sum)
}

/// An archiving server on `data`; with `plan`, the loop's groups are created.
fn start(ctx: &Ctx, data: &Path, repo: &Path, plan: Option<&Plan>) -> Result<Server> {
    let extra = ["--repo", s(repo), "--archive", "--idle-flush", "200ms"];
    let server = Server::start_with(&ctx.strata, data, &ctx.log, &extra)?;
    if let Some(p) = plan {
        ctx.client
            .put_group(&server.url, crate::workload::GROUP, &serde_json::json!({}))?;
        ctx.client
            .put_group(&server.url, crate::workload::TTL_GROUP, &p.ttl_settings())?;
    }
    Ok(server)
}

/// Waits until the archiver has started its chain (the window's start is set).
fn wait_for_chain(ctx: &Ctx, server: &Server) -> Result<()> {
    let deadline = std::time::Instant::now() + CHAIN_START_TIMEOUT;
    while std::time::Instant::now() < deadline {
        if ctx
            .client
            .metric(&server.url, "strata_archive_window_start_seconds")
            .is_some_and(|v| v > 0)
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(ctx.violation(0, "the archiver never started its chain"))
}

/// The one point-in-time window (start, end in ns); more than one, or a gap, is a violation
/// (nothing in this loop exceeds `archive.max_pending`).
fn window(ctx: &Ctx, repo: &Path, it: usize) -> Result<(i64, i64)> {
    let v = ctx
        .strata
        .run_json(&["snapshots", "--repo", s(repo), "--json"])?;
    let ws = v["pitr"]["windows"].as_array().cloned().unwrap_or_default();
    let gaps = v["pitr"]["gaps"].as_array().map_or(0, Vec::len);
    match ws.as_slice() {
        [w] if gaps == 0 => {
            let (a, b) = (w["start_ns"].as_i64(), w["end_ns"].as_i64());
            match (a, b) {
                (Some(a), Some(b)) if a <= b => Ok((a, b)),
                _ => Err(ctx.violation(it, format!("a window without a valid range: {w}"))),
            }
        }
        _ => Err(ctx.violation(
            it,
            format!(
                "expected one point-in-time window and no gap: {}",
                v["pitr"]
            ),
        )),
    }
}

/// An instant in `[start, end]`: the end itself a third of the time.
fn pick(rng: &mut StdRng, start: i64, end: i64) -> i64 {
    if end <= start || rng.random_bool(0.33) {
        end
    } else {
        rng.random_range(start..=end)
    }
}

/// `--at` takes RFC 3339, to the nanosecond.
fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// `restore --at T --force` into `tgt` (created or replaced), to completion.
fn restore_at(ctx: &Ctx, repo: &Path, tgt: &Path, t: i64) -> Result<()> {
    ctx.strata.run_ok(&[
        "restore",
        "--repo",
        s(repo),
        "--data-dir",
        s(tgt),
        "--at",
        &rfc3339(t),
        "--force",
    ])?;
    remove_restore_leftovers(tgt)
}

/// Starts a server on a restored target (finishing or rolling back an interrupted restore)
/// and dumps it.
fn dump(ctx: &Ctx, tgt: &Path, it: usize) -> Result<Vec<Row>> {
    let server = ctx.server(tgt).map_err(|e| {
        ctx.violation(
            it,
            format!("strata server does not start on the restore target: {e}"),
        )
    })?;
    let rows = ctx.client.dump(&server.url)?;
    server.stop()?;
    Ok(rows)
}

fn check(
    ctx: &Ctx,
    ledger: &Ledger,
    rows: &[Row],
    t: i64,
    it: usize,
    sum: &mut Summary,
    what: &str,
) -> Result<()> {
    let (required, allowed) = ledger.cut_at(t);
    let c = ledger.check(rows, Some(&required), Some(&allowed), t);
    sum.add_check(&c);
    if c.ok() {
        return Ok(());
    }
    Err(ctx.violation(
        it,
        format!(
            "{what} {}: lost {} points, {} phantom rows, {} torn batches; {}",
            rfc3339(t),
            c.lost,
            c.phantom,
            c.torn,
            c.problems.join("; ")
        ),
    ))
}
