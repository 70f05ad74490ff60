//! Online restore: a snapshot S holds known rows of the main group; the server's main group
//! has moved on since. Each iteration starts `strata restore --server` of S's main group, by
//! turns into a new group (`--into-group`) or over the main group (`--replace`), and SIGKILLs
//! the *server* at a random moment. After the restart the server's data must be exactly as
//! before, or exactly as before with the restored group adopted whole: never a partial group,
//! never another group touched, no staging directory or adoption journal left behind. A
//! restore the CLI reported as finished before the kill must be in.

use std::path::Path;
use std::process::Child;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rand::Rng;

use super::{Ctx, s};
use crate::error::{ChaosError, Result};
use crate::http::Row;
use crate::summary::Summary;
use crate::upto;
use crate::workload::{GROUP, Plan, Writers, now_ns};

pub fn run(ctx: &Ctx) -> Result<Summary> {
    let cfg = &ctx.cfg;
    let mut rng = ctx.rng();
    let mut sum = Summary::new("online", cfg.seed);
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
    let w = Writers::start(&ledger, &target, cfg.writers, rng.random(), Duration::ZERO)?;
    std::thread::sleep(Duration::from_millis(400));
    w.stop()?;
    let v = ctx.strata.run_json(&[
        "backup",
        "--repo",
        s(&repo),
        "--server",
        server.url.as_str(),
        "--json",
    ])?;
    let snapshot = v["snapshot"].as_str().unwrap_or_default().to_string();
    let snap_rows: Vec<Row> = of_group(&ctx.client.dump(&server.url)?, GROUP);
    if snap_rows.is_empty() {
        return Err(ChaosError::Output {
            args: "online loop set-up".into(),
            detail: "the snapshot holds no rows of the main group".into(),
        });
    }
    // Time one undisturbed online restore: the kills fall within 1.5× of it.
    let started = Instant::now();
    let warm = online(ctx, &repo, &server.url, &snapshot, "--into-group", "warmup")?;
    let out = warm.wait_with_output().map_err(ChaosError::io("wait"))?;
    if !out.status.success() {
        return Err(ChaosError::Command {
            args: "restore --server (warm-up)".into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stdout).into_owned(),
        });
    }
    let window = started.elapsed().mul_f64(1.5);
    check_group(ctx, &server.url, "warmup", &snap_rows, 0)?;
    server.stop()?;

    for it in 0..cfg.iterations {
        let server = ctx.server(&data)?;
        // The main group moves on, so a replace is always visible.
        extra_point(ctx, &server.url, it)?;
        let before = ctx.client.dump(&server.url)?;
        let replace = it % 2 == 1;
        let name = format!("restored_{it}");
        let (flag, value) = if replace {
            ("--replace", "")
        } else {
            ("--into-group", name.as_str())
        };
        let affected = if replace { GROUP } else { name.as_str() };
        let mut cli = online(ctx, &repo, &server.url, &snapshot, flag, value)?;
        std::thread::sleep(upto(&mut rng, window));
        let finished = matches!(cli.try_wait(), Ok(Some(st)) if st.success());
        server.kill();
        let _ = cli.kill();
        let _ = cli.wait();
        if finished {
            sum.finished_before_kill += 1;
        } else {
            sum.kills += 1;
        }
        let server = ctx.server(&data).map_err(|e| {
            ctx.violation(
                it,
                format!("the server does not restart after a kill during an online restore: {e}"),
            )
        })?;
        let after = ctx.client.dump(&server.url)?;
        sum.points_checked += after.len() as u64;
        let old = of_group(&before, affected);
        let got = of_group(&after, affected);
        let want = renamed(&snap_rows, affected);
        let others = |rows: &[Row]| -> Vec<Row> {
            rows.iter()
                .filter(|r| r.group != affected)
                .cloned()
                .collect()
        };
        if others(&after) != others(&before) {
            return Err(ctx.violation(it, "an online restore changed a group it does not restore"));
        }
        if got == want && got != old {
            sum.bump("adopted", 1);
        } else if got == old {
            if finished {
                return Err(ctx.violation(it, "a restore reported as finished is not in the data"));
            }
            sum.bump("as_before", 1);
        } else {
            return Err(ctx.violation(
                it,
                format!(
                    "group {affected} is partial: {} rows (before {}, snapshot {})",
                    got.len(),
                    old.len(),
                    want.len()
                ),
            ));
        }
        if data.join("ADOPT").exists() || data.join("adopt").exists() {
            return Err(ctx.violation(
                it,
                "an adoption journal or staging directory was left behind",
            ));
        }
        server.stop()?;
        sum.iterations = it + 1;
        ctx.progress(&sum);
    }
    Ok(sum)
}

/// Starts `strata restore --server` of the snapshot's main group with `flag` [`value`].
fn online(
    ctx: &Ctx,
    repo: &Path,
    url: &str,
    snapshot: &str,
    flag: &str,
    value: &str,
) -> Result<Child> {
    let mut args = vec![
        "restore",
        "--repo",
        s(repo),
        "--server",
        url,
        "--snapshot",
        snapshot,
        "--group",
        GROUP,
        flag,
    ];
    if !value.is_empty() {
        args.push(value);
    }
    ctx.strata.spawn(&args)
}

/// Fails unless `group` holds exactly the snapshot's rows.
fn check_group(ctx: &Ctx, url: &str, group: &str, snap: &[Row], it: usize) -> Result<()> {
    let got = of_group(&ctx.client.dump(url)?, group);
    if got != renamed(snap, group) {
        return Err(ctx.violation(
            it,
            format!(
                "group {group} holds {} rows, the snapshot {}",
                got.len(),
                snap.len()
            ),
        ));
    }
    Ok(())
}

fn of_group(rows: &[Row], group: &str) -> Vec<Row> {
    rows.iter().filter(|r| r.group == group).cloned().collect()
}

fn renamed(rows: &[Row], group: &str) -> Vec<Row> {
    let mut v: Vec<Row> = rows
        .iter()
        .map(|r| Row {
            group: group.to_string(),
            ..r.clone()
        })
        .collect();
    v.sort();
    v
}

/// One acknowledged point of a measure of its own in the main group.
fn extra_point(ctx: &Ctx, url: &str, it: usize) -> Result<()> {
    let line = format!("online_extra,it={it} v={it}i {}", now_ns());
    match ctx.client.write(url, GROUP, line) {
        crate::http::WriteOutcome::Acked => Ok(()),
        o => Err(ChaosError::http("write", format!("{o:?}"))),
    }
}
