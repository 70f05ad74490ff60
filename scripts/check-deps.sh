#!/usr/bin/env bash
# Checks of the dependency graph that no test can make (run by scripts/test.sh):
# - the power-loss simulator (`strata_engine::vfs::SimVfs`, feature `sim`) is in test builds
#   only: no shipped binary's normal dependency graph enables it.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for bin in strata-cli strata-bench strata-chaos; do
  tree=$(cargo tree -p "$bin" -e normal,build -f '{p} [{f}]')
  if grep -E 'strata-engine .*\[.*\bsim\b' <<<"$tree" >/dev/null; then
    echo "check-deps: $bin builds strata-engine with the test-only 'sim' feature" >&2
    status=1
  fi
done
exit "$status"
