#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS each (default 60), one after the other.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz use the sanitizer flags it needs. New corpus entries go to fuzz/corpus-run/
# (not committed; the committed seeds stay small); crashes to fuzz/artifacts/<target>/.
# Exit status is non-zero when any target found a crash.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
export RUSTC_BOOTSTRAP=1
# One build for all targets; -O: optimised with debug assertions (overflow checks on).
cargo fuzz build -O
failed=()
for t in "${targets[@]}"; do
  mkdir -p "corpus-run/$t" "artifacts/$t"
  echo "== $t: ${secs}s"
  # Seeds are read from corpus/$t; new finds are written to the first dir, corpus-run/$t.
  if ! cargo fuzz run -O "$t" "corpus-run/$t" "corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      2>&1 | tee "artifacts/$t/last-run.log" | grep -E "^(#[0-9]+ +DONE|stat::|==[0-9]+==|SUMMARY)" ; then
    :
  fi
  if ls "artifacts/$t"/crash-* "artifacts/$t"/oom-* "artifacts/$t"/timeout-* >/dev/null 2>&1; then
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "crashes found in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "no crashes in ${targets[*]}"
