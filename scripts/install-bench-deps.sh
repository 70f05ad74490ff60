#!/usr/bin/env bash
# Installs the peers the benchmark harness compares Strata with: the Debian packages
# `victoria-metrics` (victoria-metrics, vmbackup, vmrestore) and `restic`. Idempotent: does
# nothing when they are already on PATH. Not needed by the test suite (the smoke test skips the
# peer columns when they are missing).
set -euo pipefail
need=()
command -v victoria-metrics >/dev/null && command -v vmbackup >/dev/null \
  && command -v vmrestore >/dev/null || need+=(victoria-metrics)
command -v restic >/dev/null || need+=(restic)
if [ ${#need[@]} -eq 0 ]; then
  echo "bench deps already installed"
  exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
# The package may ship a systemd unit; the harness runs its own instances on 127.0.0.1 with
# fresh data directories, so a packaged service must not hold ports or CPU.
if command -v systemctl >/dev/null && systemctl is-active --quiet victoria-metrics 2>/dev/null; then
  $SUDO systemctl stop victoria-metrics || true
fi
