#!/usr/bin/env bash
# Installs what the test suite needs, if missing. Safe to run repeatedly; quick when installed.
# - Debian: prometheus (remote-read tests), influxdb-client (the `influx` 1.x CLI), chromium and
#   chromium-driver (the web UI's browser test, crates/server/tests/ui_browser.rs), npm/venv
#   tooling when the machine lacks it.
# - PyPI: moto[server] (an independent S3), influxdb (the InfluxQL client library), in a venv
#   linked as .venv-tests (gitignored).
# - npm: azurite (Azure Blob for az:// repositories), linked as .node-tests (gitignored).
# (The in-process S3 tests need nothing: they run an s3s server inside the test.)
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v influx >/dev/null || need+=(influxdb-client)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v npm >/dev/null || need+=(npm)
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

MOTO=5.2.5 INFLUXDB=5.3.2 AZURITE=3.35.0
# Installed once per machine, outside the checkout (CI clones afresh for every run), and linked
# into it as .venv-tests/ and .node-tests/, where the tests look.
deps="${STRATA_TEST_DEPS:-${XDG_CACHE_HOME:-$HOME/.cache}/strata-test-deps}"
venv="$deps/venv-moto$MOTO-influxdb$INFLUXDB"
node="$deps/node-azurite$AZURITE"
mkdir -p "$deps"
if ! "$venv/bin/python" -c "import moto, influxdb, flask" >/dev/null 2>&1; then
  rm -rf "$venv"
  python3 -m venv "$venv" || /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --no-compile --disable-pip-version-check "moto[server]==$MOTO" "influxdb==$INFLUXDB"
fi
if [ ! -x "$node/node_modules/.bin/azurite-blob" ]; then
  rm -rf "$node"
  mkdir -p "$node"
  npm install -q --prefix "$node" --no-audit --no-fund "azurite@$AZURITE" >/dev/null
fi
for link in ".venv-tests:$venv" ".node-tests:$node"; do
  name="${link%%:*}" target="${link#*:}"
  [ -e "$name" ] && [ ! -L "$name" ] && rm -rf "$name"
  ln -sfn "$target" "$name"
done
