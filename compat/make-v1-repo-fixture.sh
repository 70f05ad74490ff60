#!/usr/bin/env bash
# Makes compat/fixtures/v1-release/ with the v1 release binary (built from compat/V1_COMMIT):
# an encrypted repository holding two snapshots of one node, and the answers the v1 binary
# gave for a set of queries at each snapshot (answers.json). The test
# crates/cli/tests/compat_v1_release.rs restores both with today's binary and compares.
#
#   snapshot 1: `backup --data-dir` of a cleanly stopped server (data in parts);
#   snapshot 2: more writes (some overwriting points of snapshot 1), the server SIGKILLed,
#               then `backup --data-dir` (the v1 engine replays its format-1 WAL at open and
#               the snapshot flushes it: v1 backups hold parts, the WAL cut is empty).
#
# Usage: compat/make-v1-repo-fixture.sh PATH_TO_V1_STRATA
# (e.g. git worktree add --detach /tmp/v1 $(cat compat/V1_COMMIT) && cd /tmp/v1 &&
#  cargo build -p strata-cli, then pass /tmp/v1/target/debug/strata).
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?usage: $0 PATH_TO_V1_STRATA}
OUT=compat/fixtures/v1-release
export STRATA_REPO_PASSWORD=compat-v1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT"

"$OLD" repo init --repo "$OUT/repo" --encryption aes-256-gcm --kdf-memory-kib 256 > /dev/null

PID=""
start() {
  "$OLD" server --data-dir "$T/data" --listen 127.0.0.1:0 > "$T/server.out" 2> "$T/server.err" &
  PID=$!
  ADDR=""
  for _ in $(seq 1 300); do
    ADDR=$(sed -n 's#.*listening on http://##p' "$T/server.out" | head -1)
    [ -n "$ADDR" ] && break
    sleep 0.1
  done
  [ -n "$ADDR" ] || { cat "$T/server.err"; exit 1; }
}
write() { # group, then line protocol on stdin (timestamps in s)
  curl -sf -XPOST "http://$ADDR/api/v1/write?group=$1&precision=s" --data-binary @- > /dev/null
}
# Fixed times (2026-01-01 and -02) and a TTL of 100 years: the answers never change with the
# day the test runs.
TTL=3153600000000000000
BASE=1767225600

start
curl -sf -XPUT "http://$ADDR/api/v1/groups/fx" -H 'content-type: application/json' \
  -d "{\"ttl_ns\":$TTL,\"segment_interval\":\"1d\",\"shards\":2}" > /dev/null
curl -sf -XPUT "http://$ADDR/api/v1/groups/other" -H 'content-type: application/json' \
  -d "{\"ttl_ns\":$TTL}" > /dev/null
for i in $(seq 0 239); do
  echo "cpu,host=h$((i % 4)),dc=d$((i % 2)) usage=$i.25,n=${i}i,up=$([ $((i % 3)) = 0 ] && echo true || echo false),note=\"s$((i % 5))\" $((BASE + i * 600))"
done | write fx
for i in $(seq 0 59); do
  echo "mem,host=h$((i % 3)) used=$((i * 1000))i $((BASE + i * 1440))"
done | write other
kill -TERM "$PID"; wait "$PID" || true
"$OLD" backup --repo "$OUT/repo" --data-dir "$T/data" --label fixture=v1-parts --json > "$T/b1.json"

QUERIES='[
 {"group":"fx","measure":"cpu","from":"2026-01-01T00:00:00Z","to":"2026-01-04T00:00:00Z","group_by":["host"]},
 {"group":"fx","measure":"cpu","from":"2026-01-01T00:00:00Z","to":"2026-01-04T00:00:00Z","where":{"dc":"d1"},"fields":["usage","note"],"limit":50},
 {"group":"fx","measure":"cpu","from":"2026-01-01T00:00:00Z","to":"2026-01-04T00:00:00Z","agg":{"fn":"mean","every":"6h"},"group_by":["dc"],"fields":["usage"]},
 {"group":"fx","measure":"cpu","from":"2026-01-01T00:00:00Z","to":"2026-01-04T00:00:00Z","agg":{"fn":"last","every":"1d"},"fields":["n","up"]},
 {"group":"other","measure":"mem","from":"2026-01-01T00:00:00Z","to":"2026-01-04T00:00:00Z"}
]'
answers() { # snapshot id → {"snapshot":…, "answers":[{query, result}…]}
  python3 - "$1" "$QUERIES" "$OLD" "$T/data" <<'PY'
import json, subprocess, sys
snap, queries, old, data = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
out = []
for q in queries:
    r = subprocess.run([old, "query", "--data-dir", data, json.dumps(q)], check=True,
                       capture_output=True, text=True)
    out.append({"query": q, "result": json.loads(r.stdout)})
print(json.dumps({"snapshot": snap, "answers": out}))
PY
}
S1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["snapshot"])' "$T/b1.json")
answers "$S1" > "$T/a1.json"

start
for i in $(seq 200 319); do # overwrites 200..239, adds 240..319
  echo "cpu,host=h$((i % 4)),dc=d$((i % 2)) usage=$((i * 2)).5,n=$((i + 1000))i,up=true,note=\"t$((i % 7))\" $((BASE + i * 600))"
done | write fx
echo "mem,host=h9 used=1i $((BASE + 86400))" | write other
kill -KILL "$PID"; wait "$PID" 2> /dev/null || true
"$OLD" backup --repo "$OUT/repo" --data-dir "$T/data" --label fixture=v1-wal --json > "$T/b2.json"
S2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["snapshot"])' "$T/b2.json")
answers "$S2" > "$T/a2.json"

V1=$(tr -d '[:space:]' < compat/V1_COMMIT)
python3 - "$T/a1.json" "$T/a2.json" "$V1" > "$OUT/answers.json" <<'PY'
import json, sys
a1, a2 = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
print(json.dumps({
    "written_by": f"strata v1 release ({sys.argv[3]}) via compat/make-v1-repo-fixture.sh",
    "password": "compat-v1",
    "snapshots": [a1, a2],
}, indent=1))
PY
echo "wrote $OUT (snapshots $S1 $S2)"
