//! `strata-bench`: the benchmark harness (see BENCHMARKS.md).

fn main() {
    eprintln!("strata-bench: not implemented yet");
    std::process::exit(2);
}
