#!/usr/bin/env bash
# N-1 compatibility in both directions, with real binaries:
#   1. the previous release (the commit in compat/V1_COMMIT) writes data and backs it up;
#      this build restores that backup and must answer the same queries;
#   2. this build backs up data (WAL v2) and restores it with --format-version 1; the
#      previous release opens that directory and must answer the same queries;
#   3. a point-in-time restore of this build (data only in archived WAL, replayed from the
#      restored directory's WAL) written with --format-version 1: the previous release replays
#      that WAL and must answer as this build does on the same restore in its own format.
# Builds the previous release in a git worktree under $COMPAT_DIR (default target/compat),
# so the first run takes a full build. Usage: scripts/compat.sh   (exit 0 = both directions ok)
# STRATA_V1_BIN=path skips building the previous release (a binary built from V1_COMMIT);
# STRATA_BIN=path skips building this one.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
V1=$(tr -d '[:space:]' < compat/V1_COMMIT)
WORK=${COMPAT_DIR:-$ROOT/target/compat}
if [ -n "${STRATA_V1_BIN:-}" ]; then
  OLD=$STRATA_V1_BIN
else
  mkdir -p "$WORK"
  if [ ! -d "$WORK/v1/.git" ] && [ ! -f "$WORK/v1/.git" ]; then
    git worktree add --detach "$WORK/v1" "$V1"
  fi
  (cd "$WORK/v1" && git checkout -q --detach "$V1" && cargo build -q -p strata-cli)
  OLD=$WORK/v1/target/debug/strata
fi
if [ -n "${STRATA_BIN:-}" ]; then
  NEW=$STRATA_BIN
else
  (cd "$ROOT" && cargo build -q -p strata-cli)
  NEW=$ROOT/target/debug/strata
fi
export STRATA_REPO_PASSWORD=compat
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# Writes a fixed data set into data dir $2 with binary $1 (a server, line protocol, stop).
load() {
  local bin=$1 dir=$2 port
  "$bin" server --data-dir "$dir" --listen 127.0.0.1:0 > "$T/server.out" 2> "$T/server.err" &
  local pid=$!
  for _ in $(seq 1 200); do
    port=$(sed -n 's#.*listening on http://##p' "$T/server.out" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$T/server.err"; exit 1; }
  local base=$(( ($(date +%s) / 3600 - 3) * 3600 ))
  for i in $(seq 0 199); do
    echo "cpu,host=h$((i % 4)) usage=$i.5,n=${i}i $((base + i))"
  done | curl -sf -XPOST "http://$port/api/v1/write?group=compat&precision=s" --data-binary @-
  kill -TERM "$pid"; wait "$pid" || true
}

QUERY='{"group":"compat","measure":"cpu","from":"2000-01-01T00:00:00Z","to":"2100-01-01T00:00:00Z","agg":{"fn":"sum","every":"1000d"},"group_by":["host"]}'
answer() { "$1" query --data-dir "$2" "$QUERY"; }

echo "== 1. v1 backup, restored and queried by this build"
"$OLD" repo init --repo "$T/repo1" --kdf-memory-kib 256 > /dev/null
load "$OLD" "$T/d1"
"$OLD" backup --repo "$T/repo1" --data-dir "$T/d1" > /dev/null
want=$(answer "$OLD" "$T/d1")
"$NEW" restore --repo "$T/repo1" --data-dir "$T/r1" > /dev/null
got=$(answer "$NEW" "$T/r1")
[ "$want" = "$got" ] || { echo "v1 -> v2: answers differ"; echo "$want"; echo "$got"; exit 1; }
echo ok

echo "== 2. this build's backup restored with --format-version 1, opened by v1"
"$NEW" repo init --repo "$T/repo2" --kdf-memory-kib 256 > /dev/null
load "$NEW" "$T/d2"
"$NEW" backup --repo "$T/repo2" --data-dir "$T/d2" > /dev/null
want=$(answer "$NEW" "$T/d2")
"$NEW" restore --repo "$T/repo2" --data-dir "$T/r2" --format-version 1 > /dev/null
"$OLD" check --data-dir "$T/r2" > /dev/null
got=$(answer "$OLD" "$T/r2")
[ "$want" = "$got" ] || { echo "v2 -> v1: answers differ"; echo "$want"; echo "$got"; exit 1; }
echo ok
echo "== 3. restore --at (archived WAL) with --format-version 1, opened by v1"
"$NEW" repo init --repo "$T/repo3" --kdf-memory-kib 256 > /dev/null
"$NEW" server --data-dir "$T/d3" --listen 127.0.0.1:0 --repo "$T/repo3" --archive \
  > "$T/server.out" 2> "$T/server.err" &
pid=$!
port=""
for _ in $(seq 1 300); do
  port=$(sed -n 's#.*listening on http://##p' "$T/server.out" | head -1)
  [ -n "$port" ] && curl -sf "http://$port/metrics" | grep -q '^strata_archive_window_start_seconds [1-9]' && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$T/server.err"; exit 1; }
base=$(( ($(date +%s) / 3600 - 3) * 3600 ))
for i in $(seq 0 199); do
  echo "cpu,host=h$((i % 4)) usage=$i.5,n=${i}i $((base + i))"
done | curl -sf -XPOST "http://$port/api/v1/write?group=compat&precision=s" --data-binary @-
sleep 2
kill -KILL "$pid"; wait "$pid" 2> /dev/null || true
end=$("$NEW" snapshots --repo "$T/repo3" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pitr"]["windows"][0]["end"])')
"$NEW" restore --repo "$T/repo3" --data-dir "$T/r3" --at "$end" > /dev/null
"$NEW" restore --repo "$T/repo3" --data-dir "$T/r3v1" --at "$end" --format-version 1 > /dev/null
want=$(answer "$NEW" "$T/r3")
"$OLD" check --data-dir "$T/r3v1" > /dev/null
got=$(answer "$OLD" "$T/r3v1")
[ "$want" = "$got" ] || { echo "pitr v2 -> v1: answers differ"; echo "$want"; echo "$got"; exit 1; }
echo "$want" | grep -q '4900' || { echo "pitr v2 -> v1: the archived points are missing: $want"; exit 1; }
echo ok
echo "compat: both directions ok (v1 = $V1)"
