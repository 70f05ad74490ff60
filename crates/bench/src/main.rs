//! `strata-bench`: the benchmark harness (see BENCHMARKS.md). It generates a deterministic
//! TSBS-like data set once, then runs every scenario against Strata and, side by side in
//! alternating repetitions, against VictoriaMetrics and restic, and reports medians, min/max
//! and pair-by-pair Strata/peer ratios as JSON and Markdown.

mod datagen;
mod lineproto;
mod load;
mod machine;
mod parts;
mod pipeline;
mod procs;
mod promwrite;
mod queries;
mod report;
mod rng;
mod spool;
mod stats;
mod systems;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::datagen::{GenConfig, Variant};
use crate::pipeline::{Datasets, Pipeline, Plan};
use crate::spool::{DatasetSpec, Protocol};
use crate::systems::Tsdb;
use crate::systems::restic::Restic;
use crate::systems::strata::Strata;
use crate::systems::vm::VictoriaMetrics;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
enum Size {
    /// 10 hosts × 30 min (≈ 0.6 MB of line protocol): seconds, for tests
    Smoke,
    /// 100 hosts × 6 h (≈ 75 MB)
    Small,
    /// 1 000 hosts × 10 h (≈ 1.2 GB): the headline size
    Headline,
}

#[derive(Parser, Debug)]
#[command(name = "strata-bench", version, about = "Strata benchmark harness")]
struct Args {
    /// Smoke mode: the smoke size, one repetition, short waits (under a minute)
    #[arg(long)]
    smoke: bool,
    #[arg(long, value_enum, default_value = "small")]
    size: Size,
    /// Override the preset's host count
    #[arg(long)]
    hosts: Option<usize>,
    /// Override the preset's span of data (e.g. 6h)
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    #[arg(long, value_enum, default_value = "int")]
    variant: Variant,
    /// High series churn: every host gets a new identity every N intervals
    #[arg(long)]
    churn_every: Option<u64>,
    /// Random timestamp jitter per row, in ms
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    #[arg(long, value_enum, default_value = "lp")]
    protocol: Protocol,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// First timestamp (RFC 3339); default: so that all data ends an hour ago
    #[arg(long)]
    start: Option<String>,
    /// Concurrent HTTP connections for ingest
    #[arg(long)]
    conns: Option<usize>,
    /// Rows (points) per request body
    #[arg(long)]
    batch_rows: Option<usize>,
    /// Repetitions (alternating systems)
    #[arg(long)]
    reps: Option<usize>,
    /// Queries of each kind per repetition
    #[arg(long)]
    queries: Option<usize>,
    /// Offered load (rows/s, all connections) of the write-latency-during-backup scenario
    #[arg(long)]
    paced_rows_per_s: Option<u64>,
    /// Also measure backup/restore peak RSS with 10× the data
    #[arg(long)]
    memory_10x: bool,
    /// The strata binary to benchmark
    #[arg(long, default_value = "target/release/strata")]
    strata_bin: PathBuf,
    /// Systems to run (strata, vm); restic runs with strata unless --no-restic
    #[arg(long, value_delimiter = ',', default_value = "strata,vm")]
    systems: Vec<String>,
    #[arg(long)]
    no_restic: bool,
    /// Scratch directory (data dirs, repositories); default: a new temp dir, removed after
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Where generated request bodies are cached (reused by later runs with the same spec)
    #[arg(long)]
    spool_dir: Option<PathBuf>,
    #[arg(long)]
    keep_work: bool,
    /// Write the JSON report here
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the Markdown table here (it is always printed to stdout)
    #[arg(long)]
    md: Option<PathBuf>,
    /// Only generate the data sets and print their sizes and the generation speed
    #[arg(long)]
    gen_only: bool,
    /// Parts of the nothing-new backup scenario (`backup_nothing_new_1000_parts`); 0 skips it
    /// [default: 1000; smoke: 40]
    #[arg(long)]
    nothing_new_parts: Option<usize>,
}

/// What a size preset means.
struct Preset {
    hosts: usize,
    span: Duration,
    reps: usize,
    queries: usize,
    batch_rows: usize,
    conns: usize,
    quiet: Duration,
    quiesce_max: Duration,
    paced_rows_per_s: u64,
    paced_secs: u64,
}

fn preset(size: Size) -> Preset {
    let min = |m: u64| Duration::from_secs(60 * m);
    match size {
        Size::Smoke => Preset {
            hosts: 10,
            span: min(30),
            reps: 1,
            queries: 3,
            batch_rows: 100,
            conns: 2,
            quiet: Duration::from_millis(500),
            quiesce_max: Duration::from_secs(3),
            paced_rows_per_s: 2_000,
            paced_secs: 1,
        },
        Size::Small => Preset {
            hosts: 100,
            span: min(6 * 60),
            reps: 3,
            queries: 20,
            batch_rows: 1_000,
            conns: 4,
            quiet: Duration::from_secs(3),
            quiesce_max: Duration::from_secs(60),
            paced_rows_per_s: 20_000,
            paced_secs: 10,
        },
        Size::Headline => Preset {
            hosts: 1_000,
            span: min(10 * 60),
            reps: 3,
            queries: 50,
            batch_rows: 1_000,
            conns: 4,
            quiet: Duration::from_secs(10),
            quiesce_max: Duration::from_secs(300),
            paced_rows_per_s: 50_000,
            paced_secs: 30,
        },
    }
}

const INTERVAL_NS: i64 = 10_000_000_000;

fn main() {
    let args = Args::parse();
    match run(args) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("strata-bench: error: {e}");
            std::process::exit(1);
        }
    }
}

fn run(mut args: Args) -> Result<(), String> {
    if args.smoke {
        args.size = Size::Smoke;
        args.memory_10x = true;
    }
    let p = preset(args.size);
    let hosts = args.hosts.unwrap_or(p.hosts).max(1);
    let span = args.duration.unwrap_or(p.span);
    let intervals = (span.as_nanos() as i64 / INTERVAL_NS).max(1) as u64;
    let conns = args.conns.unwrap_or(p.conns).max(1);
    let batch_rows = args.batch_rows.unwrap_or(p.batch_rows).max(1);
    let reps = args.reps.unwrap_or(p.reps).max(1);
    let paced_rate = args.paced_rows_per_s.unwrap_or(p.paced_rows_per_s).max(1);
    let extra_intervals = intervals.div_ceil(100);
    let paced_intervals = (paced_rate * p.paced_secs).div_ceil(hosts as u64).max(1);
    let total_intervals = intervals + extra_intervals + 2 * paced_intervals;

    let start_ns = match &args.start {
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|e| format!("--start {s}: {e}"))?
            .timestamp_nanos_opt()
            .ok_or_else(|| format!("--start {s}: out of range"))?,
        None => {
            // End an hour ago, on a whole hour: inside every system's accepted window.
            let hour = 3_600_000_000_000;
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
            (now - total_intervals as i64 * INTERVAL_NS - hour) / hour * hour
        }
    };
    let base_gen = GenConfig {
        hosts,
        seed: args.seed,
        start_ns,
        interval_ns: INTERVAL_NS,
        variant: args.variant,
        churn_every: args.churn_every,
        jitter_ms: args.jitter_ms,
    };

    let tmp_work;
    let work = match &args.work_dir {
        Some(w) => w.clone(),
        None => {
            tmp_work = tempfile::Builder::new()
                .prefix("strata-bench-")
                .tempdir()
                .map_err(|e| format!("temp dir: {e}"))?;
            tmp_work.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&work).map_err(|e| format!("create {}: {e}", work.display()))?;
    let spool_root = args.spool_dir.clone().unwrap_or_else(|| work.join("spool"));

    let spec = |name: &str, skip: u64, n: u64, g: &GenConfig| DatasetSpec {
        name: name.into(),
        generator: g.clone(),
        skip_intervals: skip,
        intervals: n,
        protocol: args.protocol,
        conns,
        batch_rows,
    };
    let t0 = Instant::now();
    let prep = |s: DatasetSpec| spool::prepare(&spool_root, &s).map_err(|e| e.to_string());
    let base = prep(spec("base", 0, intervals, &base_gen))?;
    let gen_secs = t0.elapsed().as_secs_f64();
    let extra = prep(spec("extra", intervals, extra_intervals, &base_gen))?;
    let paced_alone = prep(spec(
        "paced-alone",
        intervals + extra_intervals,
        paced_intervals,
        &base_gen,
    ))?;
    let paced_backup = prep(spec(
        "paced-backup",
        intervals + extra_intervals + paced_intervals,
        paced_intervals,
        &base_gen,
    ))?;
    let tenx = if args.memory_10x {
        // Same stream, 10× as long, ending where the base data ends.
        let mut g10 = base_gen.clone();
        g10.start_ns -= 9 * intervals as i64 * INTERVAL_NS;
        Some(prep(spec("tenx", 0, 10 * intervals, &g10))?)
    } else {
        None
    };
    eprintln!(
        "data: {hosts} hosts × {intervals} intervals = {} points ({} samples), {} bodies, {:.1} MB on the wire ({:?}), generated in {gen_secs:.1} s",
        base.rows,
        base.samples(),
        base.bodies,
        base.body_bytes as f64 / 1e6,
        args.protocol
    );
    if args.gen_only {
        println!(
            "{{\"points\":{},\"bytes\":{},\"gen_s\":{gen_secs:.3},\"mb_per_s\":{:.1}}}",
            base.rows,
            base.body_bytes,
            base.body_bytes as f64 / 1e6 / gen_secs.max(1e-9)
        );
        return Ok(());
    }

    let queries = queries::generate(
        base.first_ns,
        base.last_ns,
        hosts,
        args.queries.unwrap_or(p.queries),
        args.seed,
        args.protocol,
    );
    let plan = Plan {
        work: work.clone(),
        queries_per_kind: args.queries.unwrap_or(p.queries),
        quiet: p.quiet,
        quiesce_max: p.quiesce_max,
        settle: if args.size == Size::Smoke {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(6)
        },
        pace: Duration::from_secs_f64(batch_rows as f64 * conns as f64 / paced_rate as f64),
        keep_work: args.keep_work,
    };

    let strata = Strata {
        bin: std::path::absolute(&args.strata_bin).unwrap_or(args.strata_bin.clone()),
    };
    let vm = VictoriaMetrics;
    let mut systems: Vec<&dyn Tsdb> = Vec::new();
    if args.systems.iter().any(|s| s == "strata") {
        systems.push(&strata);
    }
    if args.systems.iter().any(|s| s == "vm") {
        if systems::vm::installed() {
            systems.push(&vm);
        } else {
            eprintln!(
                "victoria-metrics/vmbackup/vmrestore not installed: VictoriaMetrics columns skipped (scripts/install-bench-deps.sh installs them)"
            );
        }
    }
    let restic = Restic {
        cache_dir: work.join("restic-cache"),
    };
    let use_restic = !args.no_restic && args.systems.iter().any(|s| s == "strata");
    if use_restic && !systems::restic::installed() {
        eprintln!(
            "restic not installed: restic columns skipped (scripts/install-bench-deps.sh installs it)"
        );
    }
    let restic = (use_restic && systems::restic::installed()).then_some(&restic);

    let ds = Datasets {
        base,
        extra,
        paced_alone,
        paced_backup,
        tenx,
    };
    let pipeline = Pipeline {
        plan: &plan,
        ds: &ds,
        queries: &queries,
        restic,
    };
    let mut records = Vec::new();
    for rep in 0..reps {
        // Alternate which system goes first, so drift on a shared machine hits both alike.
        let mut order = systems.clone();
        if rep % 2 == 1 {
            order.reverse();
        }
        for t in order {
            let st = (t.system() == "strata").then_some(&strata);
            pipeline.run(t, st, rep, &mut records);
        }
        let parts = args
            .nothing_new_parts
            .unwrap_or(if args.size == Size::Smoke { 40 } else { 1000 });
        if parts > 0 && args.systems.iter().any(|s| s == "strata") {
            eprintln!("rep {rep}: {} ({parts} parts)", parts::SCENARIO);
            let (metrics, skipped) = match parts::run(&strata, &work, parts) {
                Ok(m) => (m, None),
                Err(e) => {
                    eprintln!("  {}: skipped: {e}", parts::SCENARIO);
                    (Vec::new(), Some(e))
                }
            };
            records.push(pipeline::Record {
                rep,
                scenario: parts::SCENARIO.into(),
                system: "strata".into(),
                metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                skipped,
            });
        }
    }

    let config = serde_json::json!({
        "size": args.size,
        "hosts": hosts,
        "intervals": intervals,
        "interval_s": INTERVAL_NS / 1_000_000_000,
        "points": ds.base.rows,
        "samples": ds.base.samples(),
        "wire_bytes": ds.base.body_bytes,
        "protocol": args.protocol,
        "variant": args.variant,
        "churn_every": args.churn_every,
        "jitter_ms": args.jitter_ms,
        "seed": args.seed,
        "start_ns": start_ns,
        "conns": conns,
        "batch_rows": batch_rows,
        "reps": reps,
        "queries_per_kind": plan.queries_per_kind,
        "paced_rows_per_s": paced_rate,
        "memory_10x": args.memory_10x,
        "strata_bin": strata.bin,
        "command": std::env::args().collect::<Vec<_>>().join(" "),
    });
    let report = report::build(records, machine::describe(&work, &strata.bin), config);
    let md = report.markdown();
    print!("{md}");
    if let Some(path) = &args.md {
        std::fs::write(path, &md).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| format!("json: {e}"))?;
        std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    Ok(())
}
