//! `strata-bench`: the benchmark harness (see BENCHMARKS.md). It generates a deterministic
//! TSBS-like data set once, then runs every scenario against Strata and, side by side in
//! alternating repetitions, against VictoriaMetrics and restic, and reports medians, min/max
//! and pair-by-pair Strata/peer ratios as JSON and Markdown.

mod cache;
mod datagen;
mod lineproto;
mod load;
mod machine;
mod parts;
mod pipeline;
mod procs;
mod promwrite;
mod queries;
mod query_groups;
mod query_repo;
mod query_repo_agent;
mod report;
mod rng;
mod s3server;
mod scenarios;
mod spool;
mod stats;
mod systems;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::datagen::{GenConfig, Variant};
use crate::pipeline::{Datasets, Pipeline, Plan};
use crate::scenarios::{Family, Selection};
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
    /// 10 000 hosts × 5 000 intervals (13 h 53 min) of the `float3` variant: 50 M points,
    /// ≈ 1.15 GB on disk in Strata, for backup and restore throughput (issue 16).
    ///
    /// Sizing: random 3-decimal values cost Strata 22.6 bytes per point (10 samples) at rest
    /// at 100 hosts × 2 160 intervals and 23.1 at 1 000 × 720 (`disk_at_rest`, debug build,
    /// which writes the same bytes as release); 29.4 at 10 000 × 60, where ≈ 400 bytes of
    /// per-series overhead fall on only 60 points (on 5 000 points: < 0.1 byte each). So 50 M
    /// points ≈ 1.13–1.16 GB: at least 1 GB with a margin. Line protocol is 377 bytes per
    /// point at 10 000 hosts (18.9 GB for the base set: more than the disk can spare), so
    /// this size spools snappy-compressed bodies, 112 bytes per point: ≈ 5.6 GB for the base
    /// set, ≈ 6.0 GB with the +1 % and the two paced loads (1.5 M points each), under the
    /// 10 GB budget. Generation streams (constant memory). `memory_10x` is refused at this
    /// size (ten times all of it).
    Large,
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
    /// Field values [default: int; large: float3]
    #[arg(long, value_enum)]
    variant: Option<Variant>,
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
    /// Before each timed backup and restore (every system): sync, drop the page cache and read
    /// the source back (needs root). On a VM, writing into pages the guest has not touched
    /// lately can cost seconds per gigabyte, so otherwise the run order decides the times
    #[arg(long)]
    drop_caches: bool,
    /// Write the JSON report here
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the Markdown table here (it is always printed to stdout)
    #[arg(long)]
    md: Option<PathBuf>,
    /// Only generate the data sets and print their sizes and the generation speed
    #[arg(long)]
    gen_only: bool,
    /// Store spooled bodies snappy-compressed (the client decompresses each before sending
    /// it) [default: on for large, off otherwise]
    #[arg(long)]
    compress_spool: bool,
    /// Parts of the nothing-new backup scenario (`backup_nothing_new_1000_parts`); 0 skips it
    /// [default: 1000; smoke: 40]
    #[arg(long)]
    nothing_new_parts: Option<usize>,
    /// Scenario families to run, comma-separated [default: all]: ingest, queries, backup,
    /// nothing_new, incremental, restore, query_repo, query_repo_groups, write_p99,
    /// memory_10x, nothing_new_parts. What a family builds on runs (and reports) too.
    #[arg(long, value_delimiter = ',')]
    scenarios: Option<Vec<String>>,
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
    /// Spool bodies snappy-compressed (see `spool`).
    compress_spool: bool,
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
            compress_spool: false,
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
            compress_spool: false,
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
            compress_spool: false,
        },
        Size::Large => Preset {
            hosts: 10_000,
            span: Duration::from_secs(5_000 * INTERVAL_NS as u64 / 1_000_000_000),
            reps: 1,
            queries: 10,
            batch_rows: 1_000,
            conns: 4,
            quiet: Duration::from_secs(10),
            quiesce_max: Duration::from_secs(600),
            paced_rows_per_s: 50_000,
            paced_secs: 30,
            compress_spool: true,
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
    let sel = match &args.scenarios {
        Some(names) => Selection::parse(names)?,
        None => Selection::all(),
    };
    // memory_10x runs with --memory-10x (or --smoke), or when --scenarios names it.
    let memory_10x =
        sel.runs(Family::Memory10x) && (args.memory_10x || sel.named(Family::Memory10x));
    let p = preset(args.size);
    let variant = args.variant.unwrap_or(if args.size == Size::Large {
        Variant::Float3
    } else {
        Variant::Int
    });
    if memory_10x && args.size == Size::Large {
        return Err(
            "memory_10x at --size large would need ten times its spool and data: measure it at the headline size (leave memory_10x out of --scenarios)"
                .into(),
        );
    }
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
        variant,
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
        compress: p.compress_spool || args.compress_spool,
    };
    let t0 = Instant::now();
    let prep = |s: DatasetSpec| spool::prepare(&spool_root, &s).map_err(|e| e.to_string());
    // The base data set, unless nothing that runs needs it (`--scenarios nothing_new_parts`).
    let need_base = sel.needs_pipeline() || sel.runs(Family::QueryRepoGroups) || args.gen_only;
    let base = if need_base {
        Some(prep(spec("base", 0, intervals, &base_gen))?)
    } else {
        None
    };
    let gen_secs = t0.elapsed().as_secs_f64();
    let extra = if sel.runs(Family::Incremental) && !args.gen_only {
        Some(prep(spec("extra", intervals, extra_intervals, &base_gen))?)
    } else {
        None
    };
    let paced = if sel.runs(Family::WriteP99) && !args.gen_only {
        let alone = prep(spec(
            "paced-alone",
            intervals + extra_intervals,
            paced_intervals,
            &base_gen,
        ))?;
        let during = prep(spec(
            "paced-backup",
            intervals + extra_intervals + paced_intervals,
            paced_intervals,
            &base_gen,
        ))?;
        Some((alone, during))
    } else {
        None
    };
    let tenx = if memory_10x && !args.gen_only {
        // Same stream, 10× as long, ending where the base data ends.
        let mut g10 = base_gen.clone();
        g10.start_ns -= 9 * intervals as i64 * INTERVAL_NS;
        Some(prep(spec("tenx", 0, 10 * intervals, &g10))?)
    } else {
        None
    };
    if let Some(base) = &base {
        eprintln!(
            "data: {hosts} hosts × {intervals} intervals = {} points ({} samples), {} bodies, {:.1} MB on the wire ({:?}), generated in {gen_secs:.1} s",
            base.rows,
            base.samples(),
            base.bodies,
            base.body_bytes as f64 / 1e6,
            args.protocol
        );
    }
    eprintln!("scenario families: {}", sel.names().join(", "));
    if args.gen_only {
        let (rows, bytes) = base.as_ref().map_or((0, 0), |b| (b.rows, b.body_bytes));
        let spool = base.as_ref().map_or(0, |b| b.spool_bytes);
        println!(
            "{{\"points\":{rows},\"bytes\":{bytes},\"spool_bytes\":{spool},\"gen_s\":{gen_secs:.3},\"mb_per_s\":{:.1}}}",
            bytes as f64 / 1e6 / gen_secs.max(1e-9)
        );
        return Ok(());
    }

    let queries = match &base {
        Some(base) => queries::generate(
            base.first_ns,
            base.last_ns,
            hosts,
            args.queries.unwrap_or(p.queries),
            args.seed,
            args.protocol,
        ),
        None => Vec::new(),
    };
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
        drop_caches: args.drop_caches,
    };

    let with_strata = args.systems.iter().any(|s| s == "strata");
    // query_repo's S3 server runs from the start, so every Strata server can be told where
    // it is (attachments of s3:// repositories read the usual AWS_* variables).
    let s3 = if with_strata && sel.runs(Family::QueryRepo) && base.is_some() {
        match s3server::S3::start(&work.join("s3")) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("in-process S3 server: {e}: query_repo_s3 skipped");
                None
            }
        }
    } else {
        None
    };
    let strata = Strata {
        bin: std::path::absolute(&args.strata_bin).unwrap_or(args.strata_bin.clone()),
        server_env: s3.as_ref().map(|s| s.server_env()).unwrap_or_default(),
    };
    let vm = VictoriaMetrics;
    let mut systems: Vec<&dyn Tsdb> = Vec::new();
    if args.systems.iter().any(|s| s == "strata") {
        systems.push(&strata);
    }
    if args.systems.iter().any(|s| s == "vm") && sel.needs_pipeline() {
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
    let use_restic =
        !args.no_restic && args.systems.iter().any(|s| s == "strata") && sel.runs(Family::Backup);
    if use_restic && !systems::restic::installed() {
        eprintln!(
            "restic not installed: restic columns skipped (scripts/install-bench-deps.sh installs it)"
        );
    }
    let restic = (use_restic && systems::restic::installed()).then_some(&restic);

    let mut records = Vec::new();
    for rep in 0..reps {
        if let Some(base) = &base
            && sel.needs_pipeline()
        {
            let ds = Datasets {
                base: base.clone(),
                extra: extra.clone(),
                paced: paced.clone(),
                tenx: tenx.clone(),
            };
            let pipeline = Pipeline {
                plan: &plan,
                sel: &sel,
                ds: &ds,
                queries: &queries,
                restic,
                s3: s3.as_ref(),
            };
            // Alternate which system goes first, so drift on a shared machine hits both alike.
            let mut order = systems.clone();
            if rep % 2 == 1 {
                order.reverse();
            }
            for t in order {
                let st = (t.system() == "strata").then_some(&strata);
                pipeline.run(t, st, rep, &mut records);
            }
        }
        if let Some(base) = &base
            && with_strata
            && sel.runs(Family::QueryRepoGroups)
        {
            eprintln!("rep {rep}: {}", query_groups::SCENARIO);
            query_groups::run(&strata, &plan, base, &queries, rep, &mut records);
        }
        let parts = args
            .nothing_new_parts
            .unwrap_or(if args.size == Size::Smoke { 40 } else { 1000 });
        if parts > 0 && with_strata && sel.runs(Family::NothingNewParts) {
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
        "points": base.as_ref().map(|b| b.rows),
        "samples": base.as_ref().map(|b| b.samples()),
        "wire_bytes": base.as_ref().map(|b| b.body_bytes),
        "protocol": args.protocol,
        "variant": variant,
        "churn_every": args.churn_every,
        "jitter_ms": args.jitter_ms,
        "seed": args.seed,
        "start_ns": start_ns,
        "conns": conns,
        "batch_rows": batch_rows,
        "reps": reps,
        "queries_per_kind": plan.queries_per_kind,
        "paced_rows_per_s": paced_rate,
        "memory_10x": memory_10x,
        "scenarios": sel.names(),
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
