//! Engine-level ingest measurement on TSBS-like cpu data (10 tags, 10 fields per row).
//!
//! `cargo run --release -p strata-engine --example ingest -- [rows] [hosts] [batch] [writers] [fsync]`
//! (defaults 2,000,000 rows, 1,000 hosts, 10,000 rows per batch, 2 writers, `always`). Writes into a fresh
//! temporary directory with the default fsync policy (`always`), then flushes and merges and
//! reports rows/s, samples/s (10 per row) and bytes per sample on disk.

use std::sync::Arc;
use std::time::Instant;

use strata_engine::{Engine, EngineOptions, FieldValue, Point};

const FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

fn host_tags(h: usize) -> Vec<(String, String)> {
    let regions = ["us-east-1", "us-west-1", "eu-west-1", "ap-south-1"];
    vec![
        ("arch".into(), ["x64", "x86"][h % 2].into()),
        ("datacenter".into(), format!("{}a", regions[h % 4])),
        ("hostname".into(), format!("host_{h}")),
        (
            "os".into(),
            ["Ubuntu16.10", "Ubuntu15.10", "Ubuntu16.04LTS"][h % 3].into(),
        ),
        ("rack".into(), format!("{}", h % 100)),
        ("region".into(), regions[h % 4].into()),
        ("service".into(), format!("{}", h % 20)),
        (
            "service_environment".into(),
            ["production", "staging", "test"][h % 3].into(),
        ),
        ("service_version".into(), format!("{}", h % 2)),
        ("team".into(), ["SF", "NYC", "LON", "CHI"][h % 4].into()),
    ]
}

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows = arg(1, 2_000_000);
    let hosts = arg(2, 1_000);
    let batch = arg(3, 10_000);
    let writers = arg(4, 2);
    let dir = std::env::temp_dir().join(format!("strata-ingest-{}", std::process::id()));
    let fsync = std::env::args().nth(5).unwrap_or_else(|| "always".into());
    let mut opts = EngineOptions::new(&dir);
    opts.fsync = fsync.parse()?;
    let engine = Arc::new(Engine::open(opts)?);
    let tags: Arc<Vec<_>> = Arc::new((0..hosts).map(host_tags).collect());
    let start_ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as i64
        - 3_600_000_000_000;
    let per_writer = rows / writers;
    let t0 = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let (engine, tags) = (engine.clone(), tags.clone());
            std::thread::spawn(move || -> Result<(), strata_engine::Error> {
                let mut state = vec![50.0f64; FIELDS.len()];
                let mut seed = 0x2545_f491_4f6c_dd1du64 ^ w as u64;
                let mut done = 0;
                let mut row = w * per_writer;
                while done < per_writer {
                    let n = batch.min(per_writer - done);
                    let mut pts = Vec::with_capacity(n);
                    for _ in 0..n {
                        let h = row % tags.len();
                        let ts = start_ts + (row / tags.len()) as i64 * 10_000_000_000;
                        let fields = FIELDS
                            .iter()
                            .zip(state.iter_mut())
                            .map(|(f, s)| {
                                seed ^= seed << 13;
                                seed ^= seed >> 7;
                                seed ^= seed << 17;
                                *s = (*s + (seed % 11) as f64 - 5.0).clamp(0.0, 100.0);
                                (f.to_string(), FieldValue::F64(*s))
                            })
                            .collect();
                        pts.push(Point {
                            measure: "cpu".into(),
                            tags: tags[h].clone(),
                            fields,
                            timestamp: ts,
                        });
                        row += 1;
                    }
                    engine.write("bench", &pts)?;
                    done += n;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "writer panicked")??;
    }
    let ingest = t0.elapsed();
    let t1 = Instant::now();
    engine.flush()?;
    engine.compact()?;
    let settle = t1.elapsed();
    let stats = engine.stats();
    let mut bytes = 0u64;
    let mut stack = vec![dir.join("data")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else {
                bytes += e.metadata()?.len();
            }
        }
    }
    let total = (per_writer * writers) as f64;
    println!(
        "rows={} writers={writers} batch={batch} hosts={hosts} fsync={fsync}",
        total as u64
    );
    println!(
        "ingest: {:.2}s  {:.0} rows/s  {:.0} samples/s",
        ingest.as_secs_f64(),
        total / ingest.as_secs_f64(),
        total * 10.0 / ingest.as_secs_f64()
    );
    println!(
        "flush+merge: {:.2}s  parts={} wal_fsyncs={}",
        settle.as_secs_f64(),
        stats.parts,
        stats.wal_fsyncs
    );
    println!(
        "on disk: {bytes} bytes  {:.3} bytes/sample  {:.2} bytes/row",
        bytes as f64 / (total * 10.0),
        bytes as f64 / total
    );
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
