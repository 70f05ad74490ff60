//! The fuzz targets of `fuzz/` (cargo-fuzz) run in the default suite on a few thousand
//! mutations of their seed corpora each: byte flips, truncations, insertions, splices. Any
//! panic fails the test and prints the input to keep as a regression. Long runs are
//! `scripts/fuzz.sh` (libFuzzer, coverage-guided).
#![allow(clippy::unwrap_used)]

#[path = "../../../fuzz/src/archive_window.rs"]
mod archive_window;
#[path = "../../../fuzz/src/query_plan.rs"]
mod query_plan;
#[path = "../../../fuzz/src/targets.rs"]
mod targets;

/// xorshift64*: deterministic, so a failure reproduces with the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = &[
    0, 0xff, 0x7f, 0x80, b'\n', b' ', b',', b'=', b'"', b'\\', b'{', b'[',
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], keep_first: bool) -> Vec<u8> {
    let mut b = seeds[rng.below(seeds.len())].clone();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let start = usize::from(keep_first).min(b.len());
        let len = b.len();
        match rng.below(6) {
            0 if len > start => {
                let i = start + rng.below(len - start);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > start => {
                let i = start + rng.below(len - start);
                b[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => b.truncate(start + rng.below(len - start + 1)),
            3 => {
                let i = start + rng.below(len - start + 1);
                b.insert(i, rng.next() as u8);
            }
            4 if len > start => {
                // Splice a chunk of another seed in.
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let n = rng.below(other.len() - from + 1).min(64);
                let at = start + rng.below(len - start);
                b.splice(at..at, other[from..from + n].iter().copied());
            }
            _ if len > start + 1 => {
                // Overwrite 8 bytes with a large number (lengths, counts).
                let i = start + rng.below(len - start);
                let v = (u64::MAX >> rng.below(40)).to_le_bytes();
                for (k, x) in v.iter().enumerate() {
                    if let Some(d) = b.get_mut(i + k) {
                        *d = *x;
                    }
                }
            }
            _ => {}
        }
    }
    b
}

fn run_target(name: &str, iterations: usize, keep_first: bool) {
    let (_, body) = targets::TARGETS.iter().find(|(n, _)| *n == name).unwrap();
    let seeds = targets::seeds(name);
    assert!(!seeds.is_empty(), "{name}: no seeds");
    for s in &seeds {
        body(s);
    }
    let mut rng = Rng(0x5EED_0000 ^ (name.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    for i in 0..iterations {
        let input = mutate(&mut rng, &seeds, keep_first);
        let r = std::panic::catch_unwind(|| body(&input));
        assert!(
            r.is_ok(),
            "{name}: iteration {i} panicked on input (hex) {}",
            input.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
    }
}

#[test]
fn fuzz_smoke_line_protocol() {
    run_target("line_protocol", 20_000, false);
}

#[test]
fn fuzz_smoke_remote_write() {
    run_target("remote_write", 20_000, false);
}

#[test]
fn fuzz_smoke_query_json() {
    run_target("query_json", 20_000, false);
}

#[test]
fn fuzz_smoke_influxql() {
    run_target("influxql", 20_000, false);
}

#[test]
fn fuzz_smoke_remote_read() {
    run_target("remote_read", 20_000, false);
}

#[test]
fn fuzz_smoke_query_plan() {
    run_target("query_plan", 5_000, false);
}

#[test]
fn fuzz_smoke_engine_decoders() {
    run_target("engine_decoders", 20_000, true);
}

#[test]
fn fuzz_smoke_engine_data_dir() {
    // Each iteration copies a data dir and opens it: a few hundred only.
    run_target("engine_data_dir", 300, true);
}

#[test]
fn fuzz_smoke_backup_docs() {
    run_target("backup_docs", 5_000, false);
}

#[test]
fn fuzz_smoke_archive() {
    run_target("archive", 5_000, true);
}

#[test]
fn fuzz_smoke_agent_proto() {
    run_target("agent_proto", 20_000, false);
}

#[test]
fn fuzz_smoke_server_config() {
    run_target("server_config", 2_000, false);
}

/// `cargo test -p strata-cli --test reliability_fuzz_smoke -- --ignored write_seed_corpora`
/// refreshes `fuzz/corpus/<target>/seed-N`.
#[test]
#[ignore]
fn write_seed_corpora() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (name, _) in targets::TARGETS {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in targets::seeds(name).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s).unwrap();
        }
    }
}
