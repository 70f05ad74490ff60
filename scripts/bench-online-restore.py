#!/usr/bin/env python3
"""Write and query latency of a live server with and without an online restore running
(POST /api/v1/restores), side by side in one run (see BENCHMARKS.md).

usage: scripts/bench-online-restore.py path/to/strata WORKDIR
env:   HOSTS (20), HOURS (24), STEP_S (10), ROUNDS (3), BATCH (100 points per write)

A source server gets HOURS of cpu data (HOSTS series, 5 fields, one point every STEP_S) and
is backed up. A live server ingests continuously (one writer: BATCH points per request) while
a querier runs a dashboard query (mean per minute over the last hour of the live group).
Windows alternate: quiet (no restore) and restore (an online restore of the whole source group
into a new group, repeated until the window's length is covered), ROUNDS times each.
"""
import json, os, random, shutil, socket, statistics, subprocess, sys, threading, time, urllib.request

BIN, WORK = sys.argv[1], sys.argv[2]
HOSTS = int(os.environ.get("HOSTS", "20"))
HOURS = int(os.environ.get("HOURS", "24"))
STEP_S = int(os.environ.get("STEP_S", "10"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
BATCH = int(os.environ.get("BATCH", "100"))
FIELDS = ["usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait"]
PW = "bench-password"
env = dict(os.environ, STRATA_REPO_PASSWORD=PW)
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
REPO = os.path.join(WORK, "repo")


def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def start(data, *extra):
    p = port()
    log = open(os.path.join(WORK, f"server-{p}.log"), "w")
    proc = subprocess.Popen([BIN, "server", "--data-dir", data, "--listen", f"127.0.0.1:{p}", *extra],
                            stdout=log, stderr=log, env=env)
    url = f"http://127.0.0.1:{p}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1); return proc, url
        except Exception:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def req(method, url, body=None):
    data = body.encode() if isinstance(body, str) else (json.dumps(body).encode() if body is not None else None)
    r = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(r, timeout=600) as resp:
        out = resp.read()
    return (json.loads(out) if out else None), time.perf_counter() - t


def cli(*args):
    o = subprocess.run([BIN, *args], capture_output=True, text=True, env=env)
    if o.returncode != 0:
        raise SystemExit(f"strata {args}: {o.stderr}")
    return o


def stop(proc):
    proc.terminate(); proc.wait(timeout=300)


# Source data, backed up.
now = int(time.time()) // 3600 * 3600 - 2 * 3600
cli("repo", "init", "--repo", REPO, "--kdf-memory-kib", "256")
src, url = start(os.path.join(WORK, "src"))
rng = random.Random(7)
points, lines = 0, []
for t in range(now - HOURS * 3600, now, STEP_S):
    for h in range(HOSTS):
        vals = ",".join(f"{f}={rng.random()*100:.3f}" for f in FIELDS)
        lines.append(f"cpu,hostname=host_{h} {vals} {t}")
        if len(lines) == 5000:
            req("POST", f"{url}/api/v1/write?group=src&precision=s", "\n".join(lines)); points += len(lines); lines = []
if lines:
    req("POST", f"{url}/api/v1/write?group=src&precision=s", "\n".join(lines)); points += len(lines)
cli("backup", "--repo", REPO, "--server", url)
stop(src)

live, url = start(os.path.join(WORK, "live"), "--repo", REPO)
stop_flag = threading.Event()
writes, queries = [], []
phase = ["quiet"]


def writer():
    i = 0
    base = int(time.time()) - 1800
    while not stop_flag.is_set():
        body = "\n".join(f"cpu,hostname=w{k} usage_user={i % 100} {base + i}{k:03d}000000"
                         for k in range(BATCH))
        _, d = req("POST", f"{url}/api/v1/write?group=live&precision=ns", body)
        writes.append((phase[0], d)); i += 1


def querier():
    q = {"group": "live", "measure": "cpu", "fields": ["usage_user"], "agg": {"fn": "mean", "every": "1m"}}
    while not stop_flag.is_set():
        _, d = req("POST", f"{url}/api/v1/query", q)
        queries.append((phase[0], d))
        time.sleep(0.01)


threads = [threading.Thread(target=writer), threading.Thread(target=querier)]
for t in threads:
    t.start()
time.sleep(2)
restores, n = [], 0
for r in range(ROUNDS):
    phase[0] = "restore"
    t0 = time.perf_counter()
    while True:
        n += 1
        job, _ = req("POST", f"{url}/api/v1/restores", {"groups": ["src"], "into_group": f"copy{n}"})
        started = time.perf_counter()
        while True:
            j, _ = req("GET", f"{url}/api/v1/restores/{job['job']}")
            if j["state"] != "running":
                break
            time.sleep(0.05)
        if j["state"] != "succeeded":
            raise SystemExit(f"restore failed: {j}")
        restores.append((time.perf_counter() - started, j["detail"]["result"]["restored"]["points"]))
        req("DELETE", f"{url}/api/v1/groups/copy{n}")
        if time.perf_counter() - t0 > 8:
            break
    window = time.perf_counter() - t0
    phase[0] = "quiet"
    time.sleep(window)
stop_flag.set()
for t in threads:
    t.join()
stop(live)


def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(p * len(v)))] * 1000


out = {"source_points": points, "restores": len(restores),
       "restore_s_median": statistics.median(d for d, _ in restores),
       "restored_points": restores[0][1]}
for what, data in (("write", writes), ("query", queries)):
    for ph in ("quiet", "restore"):
        v = [d for p, d in data if p == ph]
        out[f"{what}_{ph}"] = {"n": len(v), "p50_ms": round(pct(v, 0.5), 2), "p99_ms": round(pct(v, 0.99), 2),
                               "max_ms": round(max(v) * 1000, 2)}
    out[f"{what}_p99_ratio"] = round(out[f"{what}_restore"]["p99_ms"] / out[f"{what}_quiet"]["p99_ms"], 2)
print(json.dumps(out, indent=1))
