#!/usr/bin/env bash
# Direction check of block summaries / aggregation pushdown (BENCHMARKS.md, 2026-12-01):
# ingests 500 hosts x 4000 points (2 float fields) into one data dir per binary, then times
# six queries offline (best of 3). Usage: scripts/bench-pushdown.sh OLD_STRATA NEW_STRATA [WORKDIR]
set -euo pipefail
OLD=$(realpath "$1"); NEW=$(realpath "$2"); W=${3:-/tmp/strata-bench-pushdown}
mkdir -p "$W"; cd "$W"
python3 - <<'PY'
import random
random.seed(7)
H, N, STEP, T0 = 500, 4000, 10_000_000_000, 1_767_225_600_000_000_000
with open('data.lp', 'w') as out:
    for t in range(N):
        ts = T0 + t * STEP
        out.write(''.join(f"cpu,hostname=host_{h},region=r{h%5} usage_user={random.random()*100:.3f},usage_system={random.random()*100:.3f} {ts}\n" for h in range(H)))
PY
rm -f chunk_*; split -l 100000 data.lp chunk_
ingest() { # BIN DIR PORT
  rm -rf "$2"
  "$1" server --data-dir "$2" --listen 127.0.0.1:$3 --fsync never --idle-flush 1s >"$2.log" 2>&1 &
  local pid=$!
  for _ in $(seq 50); do curl -sf 127.0.0.1:$3/api/v1/groups >/dev/null && break; sleep 0.2; done
  curl -sf -X PUT -H 'content-type: application/json' 127.0.0.1:$3/api/v1/groups/bench \
    -d '{"ttl":"36500d","segment_interval":"30d","shards":1}' >/dev/null
  for f in chunk_*; do curl -sf --data-binary @"$f" "127.0.0.1:$3/api/v1/write?group=bench&precision=ns"; done
  sleep 8; kill "$pid"; wait "$pid" || true
}
ingest "$OLD" old 18571
ingest "$NEW" new 18572
T0=1767225600000000000; END=$((T0+4000*10000000000)); H=3600000000000
q=(
 "{\"group\":\"bench\",\"measure\":\"cpu\",\"from\":$((T0+2*H)),\"to\":$((T0+3*H)),\"where\":{\"region\":\"r1\"},\"fields\":[\"usage_user\"],\"agg\":{\"fn\":\"mean\",\"every\":\"1m\"}}"
 "{\"group\":\"bench\",\"measure\":\"cpu\",\"from\":$T0,\"to\":$END,\"fields\":[\"usage_user\"],\"agg\":{\"fn\":\"max\",\"every\":\"1h\"},\"group_by\":[\"hostname\"]}"
 "{\"group\":\"bench\",\"measure\":\"cpu\",\"from\":$T0,\"to\":$END,\"fields\":[\"usage_user\",\"usage_system\"],\"agg\":{\"fn\":\"last\"},\"group_by\":[\"hostname\"]}"
 "{\"group\":\"bench\",\"measure\":\"cpu\",\"from\":$((END-H)),\"to\":$END,\"fields\":[\"usage_user\",\"usage_system\"],\"agg\":{\"fn\":\"last\"},\"group_by\":[\"hostname\"]}"
 "{\"group\":\"bench\",\"measure\":\"cpu\",\"from\":$T0,\"to\":$END,\"fields\":[\"usage_user\"],\"agg\":{\"fn\":\"sum\"},\"group_by\":[\"hostname\"]}"
 "{\"group\":\"bench\",\"measure\":\"cpu\",\"from\":$((T0+2*H)),\"to\":$((T0+3*H)),\"where\":{\"hostname\":\"host_7\"},\"fields\":[\"usage_user\"]}"
)
names=(mean_region_1m max_host_1h last_all last_1h sum_host raw_one_series)
for i in "${!q[@]}"; do
  for v in old new; do
    bin=$OLD; [ $v = new ] && bin=$NEW
    best=999
    for _ in 1 2 3; do
      s=$(date +%s.%N); "$bin" query --data-dir $v "${q[$i]}" > "${names[$i]}.$v.json"; e=$(date +%s.%N)
      best=$(echo "t=$e-$s; if (t < $best) t else $best" | bc)
    done
    echo "${names[$i]} $v ${best}s $(md5sum < "${names[$i]}.$v.json" | cut -c1-8)"
  done
done
