#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS each (default 60).
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#   FUZZ_PARALLEL=N scripts/fuzz.sh ...   runs N targets at a time (default 1)
#   FUZZ_NICE=19 scripts/fuzz.sh ...      runs the fuzzers niced (a machine shared with builds)
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz use the sanitizer flags it needs. New corpus entries go to fuzz/corpus-run/
# (not committed; the committed seeds stay small); crashes to fuzz/artifacts/<target>/, and each
# target's full log to fuzz/artifacts/<target>/last-run.log.
# Exit status is non-zero when any target found a crash.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
parallel="${FUZZ_PARALLEL:-1}"
nice_level="${FUZZ_NICE:-0}"
export RUSTC_BOOTSTRAP=1
# One build for all targets; -O: optimised with debug assertions (overflow checks on).
cargo fuzz build -O

run_one() {
  local t="$1"
  mkdir -p "corpus-run/$t" "artifacts/$t"
  echo "== $t: ${secs}s (started $(date -u +%H:%M:%S))"
  # Seeds are read from corpus/$t; new finds are written to the first dir, corpus-run/$t.
  # -artifact_prefix keeps crashes per target even when several run at once.
  nice -n "$nice_level" cargo fuzz run -O "$t" "corpus-run/$t" "corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" >"artifacts/$t/last-run.log" 2>&1 || true
  echo "== $t done: $(grep -E '^stat::number_of_executed_units' "artifacts/$t/last-run.log" || echo 'no stats (see log)')"
}

running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=()
for t in "${targets[@]}"; do
  if ls "artifacts/$t"/crash-* "artifacts/$t"/oom-* "artifacts/$t"/timeout-* >/dev/null 2>&1; then
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "crashes found in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "no crashes in ${targets[*]}"
