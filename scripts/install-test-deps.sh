#!/usr/bin/env bash
# Installs the system packages the test suite needs, if missing. Safe to run repeatedly.
# (The S3 tests need nothing: they run an in-process S3 server.)
set -euo pipefail
need=()
# Add Debian packages here as tests come to need them, e.g.:
# command -v restic >/dev/null || need+=(restic)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
