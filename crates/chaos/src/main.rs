//! `strata-chaos`: see the library docs. Exit status 0 when every loop passed, 1 on a broken
//! promise (the message names the seed and iteration to replay), 2 when the harness itself
//! failed (e.g. the binary is missing).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use strata_chaos::{Config, LoopKind};

#[derive(Parser)]
#[command(
    name = "strata-chaos",
    about = "SIGKILL the real strata binaries at seeded random moments and check what survives"
)]
struct Args {
    /// Which kill loop to run
    #[arg(long = "loop", value_enum, default_value = "all")]
    kind: LoopKind,
    /// Kills per loop
    #[arg(long, default_value_t = 20)]
    iterations: usize,
    /// Seed of every random choice (printed; reuse it to replay)
    #[arg(long)]
    seed: Option<u64>,
    /// Scratch directory (one subdirectory per loop, removed when the loop passes)
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// The strata binary (default: target/release/strata, else target/debug/strata)
    #[arg(long)]
    strata_bin: Option<PathBuf>,
    /// Concurrent writers in the ingest and backup loops
    #[arg(long, default_value_t = 4)]
    writers: u32,
    /// Points per line-protocol batch
    #[arg(long, default_value_t = 50)]
    batch_points: usize,
    /// Ingest kills per fresh data directory
    #[arg(long, default_value_t = 20)]
    epoch: usize,
    /// Writers pause this long after each acknowledged batch (bounds the data each check
    /// reads back; 0 = as fast as the server acknowledges)
    #[arg(long, default_value_t = 20)]
    pace_ms: u64,
    /// Never let an ingest iteration run long (by default one in fourteen runs 10-30 s, so the
    /// engine's age flush and TTL pass happen before the kill)
    #[arg(long)]
    short: bool,
    /// Print the summaries as JSON
    #[arg(long)]
    json: bool,
}

fn default_bin() -> PathBuf {
    let candidates = [
        PathBuf::from("target/release/strata"),
        PathBuf::from("target/debug/strata"),
    ];
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.join("strata")));
    candidates
        .into_iter()
        .chain(sibling)
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("target/release/strata"))
}

fn main() -> ExitCode {
    let a = Args::parse();
    let seed = a.seed.unwrap_or_else(rand::random);
    let bin = a.strata_bin.unwrap_or_else(default_bin);
    if !bin.is_file() {
        eprintln!(
            "error: strata binary {} not found; build it (cargo build --release -p strata-cli) or pass --strata-bin",
            bin.display()
        );
        return ExitCode::from(2);
    }
    let work = a
        .work_dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("strata-chaos-{seed}")));
    let mut cfg = Config::new(bin, work.clone(), seed, a.iterations);
    cfg.writers = a.writers.max(1);
    cfg.batch_points = a.batch_points.max(1);
    cfg.long_iterations = !a.short;
    cfg.progress = true;
    cfg.epoch = a.epoch.max(1);
    cfg.pace = std::time::Duration::from_millis(a.pace_ms);
    eprintln!(
        "strata-chaos: loop {}, {} kills per loop, seed {seed}, binary {}, work dir {}",
        a.kind.name(),
        a.iterations,
        cfg.strata_bin.display(),
        work.display()
    );
    match strata_chaos::run(&cfg, a.kind) {
        Ok(summaries) => {
            if a.json {
                match serde_json::to_string_pretty(&summaries) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                for s in &summaries {
                    println!("{}", s.text());
                }
            }
            let _ = std::fs::remove_dir(&work);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("work directory kept: {}", work.display());
            ExitCode::from(if e.is_violation() { 1 } else { 2 })
        }
    }
}
