//! `strata-chaos`: kill loops that drive the real `strata` binary and SIGKILL it at seeded
//! random moments (during ingest, merges and TTL drops, backup, prune, restore, archiving and
//! online restore), then check that every promise still holds: no acknowledged write lost, nothing never written present,
//! every completed snapshot verifies, the next backup reuses what was uploaded, a restore
//! target is exactly the old or the new data, and the point-in-time window restores exactly
//! what was acknowledged before each instant in it.

pub mod error;
pub mod http;
pub mod loops;
pub mod proc;
pub mod summary;
pub mod workload;

use std::path::PathBuf;
use std::time::Duration;

pub use error::{ChaosError, Result};
pub use summary::Summary;

/// Which kill loop to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoopKind {
    Ingest,
    Backup,
    Prune,
    Restore,
    /// Continuous archiving and `restore --at`: kills of the archiving server, of
    /// `restore --at` and of prune's archive retention.
    Archive,
    /// `strata restore --server` with the server SIGKILLed (`loops/online.rs`).
    Online,
    All,
}

impl LoopKind {
    pub fn name(self) -> &'static str {
        match self {
            LoopKind::Ingest => "ingest",
            LoopKind::Backup => "backup",
            LoopKind::Prune => "prune",
            LoopKind::Restore => "restore",
            LoopKind::Archive => "archive",
            LoopKind::Online => "online",
            LoopKind::All => "all",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub strata_bin: PathBuf,
    /// Each loop works in its own subdirectory, removed after a passing run.
    pub work_dir: PathBuf,
    pub seed: u64,
    /// Kills per loop.
    pub iterations: usize,
    pub writers: u32,
    /// Points per line-protocol batch.
    pub batch_points: usize,
    /// Let some ingest iterations run long enough (tens of seconds) for the engine's age-based
    /// flush and TTL pass to happen before the kill. Off for the short default-suite run.
    pub long_iterations: bool,
    /// One line on stderr per iteration.
    pub progress: bool,
    /// Ingest kills per data directory (each check dumps everything written since).
    pub epoch: usize,
    /// Writers pause this long after each acknowledged batch (ingest and backup loops): long
    /// runs would otherwise pile up more data than each check can read back quickly.
    pub pace: Duration,
}

impl Config {
    pub fn new(strata_bin: PathBuf, work_dir: PathBuf, seed: u64, iterations: usize) -> Config {
        Config {
            strata_bin,
            work_dir,
            seed,
            iterations,
            writers: 4,
            batch_points: 50,
            long_iterations: false,
            progress: false,
            epoch: 20,
            pace: Duration::from_millis(2),
        }
    }
}

/// Runs one loop (or all, in order) and returns one summary per loop. A broken promise is
/// returned as [`ChaosError::Violation`], with the work directory left in place.
pub fn run(cfg: &Config, kind: LoopKind) -> Result<Vec<Summary>> {
    let kinds = match kind {
        LoopKind::All => vec![
            LoopKind::Ingest,
            LoopKind::Backup,
            LoopKind::Prune,
            LoopKind::Restore,
            LoopKind::Archive,
            LoopKind::Online,
        ],
        k => vec![k],
    };
    let mut out = Vec::new();
    for k in kinds {
        let dir = cfg.work_dir.join(k.name());
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(ChaosError::io(format!("clear {}", dir.display())))?;
        }
        std::fs::create_dir_all(&dir)
            .map_err(ChaosError::io(format!("create {}", dir.display())))?;
        let started = std::time::Instant::now();
        let ctx = loops::Ctx::new(cfg, k, dir.clone())?;
        let mut s = match k {
            LoopKind::Ingest => loops::ingest::run(&ctx)?,
            LoopKind::Backup => loops::backup::run(&ctx)?,
            LoopKind::Prune => loops::prune::run(&ctx)?,
            LoopKind::Archive => loops::archive::run(&ctx)?,
            LoopKind::Online => loops::online::run(&ctx)?,
            LoopKind::Restore | LoopKind::All => loops::restore::run(&ctx)?,
        };
        s.seconds = started.elapsed().as_secs_f64();
        // Only a passing loop cleans up: a failing one leaves its evidence.
        let _ = std::fs::remove_dir_all(&dir);
        out.push(s);
    }
    Ok(out)
}

/// Uniform random duration in `[0, max)`.
pub(crate) fn upto(rng: &mut impl rand::Rng, max: Duration) -> Duration {
    let ms = max.as_millis().max(1) as u64;
    Duration::from_micros(rng.random_range(0..ms * 1000))
}
