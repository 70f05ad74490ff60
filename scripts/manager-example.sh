#!/usr/bin/env bash
# The OPERATIONS.md §8 worked example (copies and drills included), crons sped up (seconds
# instead of hours), through the real binary: writes to three tiers for SECS seconds (default
# 65), then prints the jobs by kind, schedule and outcome; /metrics, the jobs and both
# repositories' snapshot lists are left in $D. Usage: scripts/manager-example.sh (after a build).
set -euo pipefail
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/debug/strata}
D=${D:-$(mktemp -d)}; mkdir -p $D
echo "working in $D"
export STRATA_REPO_PASSWORD=example-pw
echo offsite-pw > $D/offsite.pw
$BIN repo init --repo $D/repo --kdf-memory-kib 256 >/dev/null
STRATA_REPO_PASSWORD=offsite-pw $BIN repo init --repo $D/offsite --kdf-memory-kib 256 >/dev/null
U=http://127.0.0.1:18480
# 1. groups with their tiers
$BIN server --data-dir $D/data --listen 127.0.0.1:18480 > $D/server0.log 2>&1 & P=$!
for i in $(seq 50); do curl -sf $U/ping >/dev/null && break; sleep 0.2; done
for g in hot warm cold; do curl -sf -XPUT $U/api/v1/groups/$g -H "content-type: application/json" -d "{\"backup_tier\":\"$g\"}" >/dev/null; done
kill $P; wait $P || true
cat > $D/strata.toml <<TOML
data_dir = "$D/data"
jobs_history = "$D/jobs.log"
repo = "$D/repo"
listen = "127.0.0.1:18480"

[[schedule]]
name = "hot"
tiers = ["hot"]
cron = "*/5 * * * * *"
space_trigger = "1MiB"
full = "*/20 * * * * *"
retention = { keep_last = 4, grace = "0s" }
copy_to = { url = "$D/offsite", password_file = "$D/offsite.pw" }
drill = "*/15 * * * * *"

[[schedule]]
name = "warm"
tiers = ["warm"]
cron = "*/10 * * * * *"
full = "*/30 * * * * *"
retention = { keep_last = 3, grace = "0s" }
copy_to = { url = "$D/offsite", password_file = "$D/offsite.pw" }
drill = "*/20 * * * * *"

[[schedule]]
name = "cold"
tiers = ["cold"]
cron = "*/30 * * * * *"
retention = { keep_last = 2, grace = "0s" }
TOML
$BIN server --config $D/strata.toml > $D/server.log 2>&1 & P=$!
for i in $(seq 50); do curl -sf $U/ping >/dev/null && break; sleep 0.2; done
T0=$(date +%s)
while [ $(( $(date +%s) - T0 )) -lt ${SECS:-65} ]; do
  now=$(date +%s%N)
  for g in hot warm cold; do
    body=""
    for h in 0 1 2 3 4 5 6 7; do body+="cpu,host=h$h usage=$RANDOM.5 $now"$'\n'; done
    curl -sf -XPOST "$U/write?db=$g&precision=ns" --data-binary "$body" >/dev/null || echo "write to $g failed"
  done
  sleep 0.5
done
curl -sf $U/metrics | grep -E '^strata_(backup|drill)_' | sort > $D/metrics.txt
curl -sf "$U/api/v1/jobs?limit=500" > $D/jobs.json
curl -sf $U/api/v1/schedules > $D/schedules.json
kill $P; wait $P || true
$BIN snapshots --repo $D/repo > $D/snapshots.txt
STRATA_REPO_PASSWORD=offsite-pw $BIN snapshots --repo $D/offsite > $D/offsite-snapshots.txt
python3 - "$D" <<'PY'
import json,sys,collections
d=sys.argv[1]
jobs=json.load(open(d+"/jobs.json"))["jobs"]
c=collections.Counter((j["kind"],j.get("schedule"),j["state"]) for j in jobs)
for k,v in sorted(c.items(), key=str): print(*k, v)
PY
