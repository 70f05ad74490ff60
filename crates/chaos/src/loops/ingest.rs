//! Ingest: concurrent writers post checkable batches to `strata server`, which is SIGKILLed at
//! a random moment; after a restart (WAL replay) a full query dump must hold every acknowledged
//! batch whole, batches in flight whole or not at all, and nothing never written.
//!
//! The server has no knob for the memtable size or age (64 MiB / 30 s) or the TTL pass (every
//! 10 s of uptime), so the loop gets parts, merges and TTL drops by other means: a graceful
//! restart now and then flushes the memtables into parts (six parts in a shard trigger a merge
//! soon after the next start), and with `long_iterations` one kill in fourteen comes 10-30 s after
//! start, past the age flush of restarts and the TTL pass. The TTL group's expiring segment
//! passes its TTL during each epoch (a fresh data directory every `--epoch` kills).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rand::Rng;

use super::Ctx;
use crate::error::{ChaosError, Result};
use crate::summary::Summary;
use crate::upto;
use crate::workload::{Plan, Writers, now_ns};

pub fn run(ctx: &Ctx) -> Result<Summary> {
    let cfg = &ctx.cfg;
    let mut rng = ctx.rng();
    let mut sum = Summary::new("ingest", cfg.seed);
    let mut it = 0;
    let mut epoch = 0u64;
    while it < cfg.iterations {
        let data = ctx.dir.join(format!("data-{epoch}"));
        let expire_in = if cfg.long_iterations {
            Duration::from_secs(rng.random_range(15..90))
        } else {
            Duration::from_secs(rng.random_range(4..8))
        };
        let plan = Plan::new(cfg.seed ^ epoch, cfg.batch_points, expire_in);
        let ledger = ctx.ledger(plan, &format!("acks-{epoch}.log"))?;
        let mut server = ctx.server_with_groups(&data, &plan)?;
        let target = Arc::new(RwLock::new(server.url.clone()));
        for k in 0..cfg.epoch.max(1) {
            if it >= cfg.iterations {
                break;
            }
            let writers = Writers::start(&ledger, &target, cfg.writers, rng.random(), cfg.pace)?;
            let delay = if cfg.long_iterations && rng.random_bool(0.07) {
                Duration::from_millis(rng.random_range(10_000..30_000))
            } else {
                upto(&mut rng, Duration::from_millis(1500))
            };
            std::thread::sleep(delay);
            // What the engine did in this life, read just before the kill.
            let merges = ctx.client.metric(&server.url, "strata_merges_total");
            let drops = ctx
                .client
                .metric(&server.url, "strata_segments_dropped_total");
            sum.bump("merges_seen", merges.unwrap_or(0));
            sum.bump("segments_dropped_seen", drops.unwrap_or(0));
            if !server.is_running() {
                return Err(ctx.violation(it, "the server exited on its own under write load"));
            }
            server.kill();
            sum.kills += 1;
            writers.stop()?;
            server = ctx
                .server(&data)
                .map_err(|e| ctx.violation(it, format!("restart after SIGKILL failed: {e}")))?;
            set(&target, &server.url);
            let rows = ctx.client.dump(&server.url)?;
            let c = ledger.check(&rows, None, None, now_ns());
            sum.add_check(&c);
            sum.acked_batches = c.acked_batches;
            sum.bump("expired_batches_gone", c.expired_gone);
            if !c.ok() {
                return Err(ctx.violation(
                    it,
                    format!(
                        "after SIGKILL + restart: lost {} points, {} phantom rows, {} torn batches; {}",
                        c.lost,
                        c.phantom,
                        c.torn,
                        c.problems.join("; ")
                    ),
                ));
            }
            // Not on an epoch's last kill: the stop right after would SIGTERM a server that
            // has only just printed its listening line (see the ignored regression test
            // `sigterm_right_after_start_is_handled`).
            if rng.random_bool(0.3) && k + 1 < cfg.epoch.max(1) {
                // Flush into parts (SIGTERM closes the engine cleanly).
                server.stop()?;
                server = ctx.server(&data)?;
                set(&target, &server.url);
                sum.bump("graceful_restarts", 1);
            }
            it += 1;
            sum.iterations = it;
            ctx.progress(&sum);
        }
        server.stop()?;
        std::fs::remove_dir_all(&data)
            .map_err(ChaosError::io(format!("remove {}", data.display())))?;
        epoch += 1;
    }
    Ok(sum)
}

fn set(target: &RwLock<String>, url: &str) {
    *target.write().unwrap_or_else(|e| e.into_inner()) = url.to_string();
}
