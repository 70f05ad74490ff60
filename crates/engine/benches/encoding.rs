//! Micro benchmark of the column encodings on TSBS-like columns (8192-value blocks).
//!
//! `cargo bench -p strata-engine --bench encoding` prints, per column shape, bytes per value and
//! encode / decode throughput in million values per second. Without `--bench` (as under
//! `cargo test --all-targets`) it runs each shape once, as a smoke test, and prints nothing.
//! Throughput is per second of this thread's CPU time, so that a busy machine (other builds
//! on the same cores) does not distort it as much as wall time would.

// One libc call reads the thread's CPU clock; std has no portable equivalent.
#![allow(unsafe_code)]

use std::hint::black_box;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_engine::encoding::*;

const BLOCK: usize = 8192;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench = args.iter().any(|a| a == "--bench");
    // An optional filter, as with libtest: `cargo bench --bench encoding -- f64`.
    let filter = args.iter().find(|a| !a.starts_with("--")).cloned();
    let measure = |name: &str| bench && filter.as_deref().is_none_or(|f| name.contains(f));
    let mut rng = StdRng::seed_from_u64(7);
    let start = 1_700_000_000_000_000_000i64;
    let ts: Vec<i64> = (0..BLOCK as i64)
        .map(|i| start + i * 10_000_000_000)
        .collect();
    let jittered: Vec<i64> = ts
        .iter()
        .map(|t| t + rng.random_range(0..100) * 1_000_000)
        .collect();
    let walk = random_walk(&mut rng);
    let ints: Vec<i64> = walk.iter().map(|x| *x as i64).collect();
    let floats: Vec<f64> = walk.iter().map(|x| (x * 100.0).round() / 100.0).collect();
    let noisy: Vec<f64> = walk.iter().map(|x| x.sqrt()).collect();
    let flags: Vec<bool> = (0..BLOCK).map(|i| (i / 700) % 3 == 0).collect();
    let states = ["ok", "warning", "critical"];
    let status: Vec<&str> = (0..BLOCK).map(|i| states[(i / 97 + i / 13) % 3]).collect();

    if bench {
        println!(
            "{:<28} {:>9} {:>12} {:>12}",
            "column (8192 values)", "B/value", "enc Mval/s", "dec Mval/s"
        );
    }
    run(
        measure,
        "timestamps 10 s",
        &ts,
        encode_timestamps,
        decode_timestamps,
    );
    run(
        measure,
        "timestamps 0-99 ms jitter",
        &jittered,
        encode_timestamps,
        decode_timestamps,
    );
    run(measure, "i64 TSBS walk", &ints, encode_i64, decode_i64);
    run(
        measure,
        "f64 walk, 2 decimals",
        &floats,
        encode_f64,
        decode_f64,
    );
    run(
        measure,
        "f64 full precision",
        &noisy,
        encode_f64,
        decode_f64,
    );
    run(measure, "bool long runs", &flags, encode_bool, decode_bool);
    run(measure, "string 3 states", &status, encode_str, decode_str);
}

fn random_walk(rng: &mut StdRng) -> Vec<f64> {
    let mut x: f64 = rng.random_range(0.0..100.0);
    (0..BLOCK)
        .map(|_| {
            // Box–Muller N(0, 1) step, clamped to [0, 100] like TSBS.
            let u1: f64 = rng.random_range(f64::EPSILON..1.0);
            let u2: f64 = rng.random();
            let step = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            x = (x + step).clamp(0.0, 100.0);
            x
        })
        .collect()
}

fn run<T, U>(
    measure: impl Fn(&str) -> bool,
    name: &str,
    values: &[T],
    encode: impl Fn(&[T], &mut Vec<u8>),
    decode: impl Fn(&[u8], usize, &mut Vec<U>) -> Result<(), DecodeError>,
) {
    let mut chunk = Vec::new();
    encode(values, &mut chunk);
    let mut out = Vec::with_capacity(values.len());
    if let Err(e) = decode(&chunk, values.len(), &mut out) {
        panic!("{name}: chunk does not decode: {e}");
    }
    if !measure(name) {
        return;
    }
    let enc = per_second(values.len(), || {
        chunk.clear();
        encode(black_box(values), &mut chunk);
    });
    let dec = per_second(values.len(), || {
        out.clear();
        let _ = black_box(decode(black_box(&chunk), values.len(), &mut out));
    });
    println!(
        "{name:<28} {:>9.3} {:>12.1} {:>12.1}",
        chunk.len() as f64 / values.len() as f64,
        enc / 1e6,
        dec / 1e6
    );
}

/// Values per CPU-second of `f`, run repeatedly for about 300 ms of CPU time.
fn per_second(values: usize, mut f: impl FnMut()) -> f64 {
    let started = thread_cpu_seconds();
    let mut rounds = 0u64;
    while thread_cpu_seconds() - started < 0.3 {
        f();
        rounds += 1;
    }
    (rounds as f64 * values as f64) / (thread_cpu_seconds() - started)
}

fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}
