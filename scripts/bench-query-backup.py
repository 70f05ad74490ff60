#!/usr/bin/env python3
"""Query a backup in place vs a restored server: bytes fetched and latency (see BENCHMARKS.md)."""
import json, os, random, shutil, socket, statistics, subprocess, sys, time, urllib.request

BIN = sys.argv[1]
WORK = sys.argv[2]
HOSTS = int(os.environ.get("HOSTS", "20"))
HOURS = int(os.environ.get("HOURS", "6"))
STEP_S = int(os.environ.get("STEP_S", "30"))
GROUPS = 10
FIELDS = ["usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait"]
REGIONS = ["eu-west-1", "us-east-1", "ap-south-1"]
PW = "bench-password"
env = dict(os.environ, STRATA_REPO_PASSWORD=PW)
shutil.rmtree(WORK, ignore_errors=True); os.makedirs(WORK)

def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def start(data):
    p = port()
    log = open(os.path.join(WORK, f"server-{p}.log"), "w")
    proc = subprocess.Popen([BIN, "server", "--data-dir", data, "--listen", f"127.0.0.1:{p}"], stdout=log, stderr=log, env=env)
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
    t = time.perf_counter()
    o = subprocess.run([BIN, *args], capture_output=True, text=True, env=env)
    d = time.perf_counter() - t
    if o.returncode != 0:
        raise SystemExit(f"strata {args}: {o.stderr}")
    return o, d

now = int(time.time()) // 3600 * 3600 - 2 * 3600
start_s = now - HOURS * 3600
src, url = start(os.path.join(WORK, "src"))
rng = random.Random(7)
points = 0
for g in range(GROUPS):
    lines = []
    for t in range(start_s, now, STEP_S):
        for h in range(HOSTS):
            vals = ",".join(f"{f}={rng.random()*100:.3f}" for f in FIELDS)
            lines.append(f"cpu,hostname=host_{h},region={REGIONS[h % 3]} {vals} {t}")
    for i in range(0, len(lines), 5000):
        req("POST", f"{url}/api/v1/write?group=g{g}&precision=s", "\n".join(lines[i:i+5000]))
    points += len(lines)
repo = os.path.join(WORK, "repo")
cli("repo", "init", "--repo", repo)
cli("backup", "--repo", repo, "--server", url)
src.terminate(); src.wait()
restored = os.path.join(WORK, "restored")
cli("restore", "--repo", repo, "--data-dir", restored)
live, url = start(restored)
iso = lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))
mid = start_s + HOURS * 3600 // 2
Q = {
    "single_series_1h": {"measure": "cpu", "from": iso(mid), "to": iso(mid + 3600), "where": {"hostname": "host_3"}, "fields": ["usage_user"]},
    "region_mean_1m_1h": {"measure": "cpu", "from": iso(mid), "to": iso(mid + 3600), "where": {"region": "eu-west-1"}, "fields": ["usage_user"], "agg": {"fn": "mean", "every": "1m"}},
    "groupby_host_1h_1d": {"measure": "cpu", "from": iso(start_s), "to": iso(now), "fields": ["usage_user"], "agg": {"fn": "max", "every": "1h"}, "group_by": ["hostname"]},
    "lastpoint_all_hosts": {"measure": "cpu", "fields": FIELDS, "agg": {"fn": "last"}, "group_by": ["hostname"]},
}
REPS = 7
rows = []
for name, q in Q.items():
    lq = dict(q, group="g3")
    want, _ = req("POST", f"{url}/api/v1/query", lq)
    live_t = statistics.median(req("POST", f"{url}/api/v1/query", lq)[1] for _ in range(REPS))
    cache = os.path.join(WORK, f"cache-{name}")
    att, attach_t = req("POST", f"{url}/api/v1/attachments", {"repo": repo, "groups": ["g3"], "as": "a_", "cache_dir": cache})
    aq = dict(q, group="a_g3")
    got, first_t = req("POST", f"{url}/api/v1/query", aq)
    assert got == want, name
    lst, _ = req("GET", f"{url}/api/v1/attachments")
    fetched = lst["attachments"][0]["fetched"]["bytes_fetched"]
    repo_bytes = lst["attachments"][0]["repository_bytes"]
    warm_t = statistics.median(req("POST", f"{url}/api/v1/query", aq)[1] for _ in range(REPS))
    req("DELETE", f"{url}/api/v1/attachments/a_")
    ccache = os.path.join(WORK, f"ccache-{name}")
    o, cli_first = cli("query", "--repo", repo, "--snapshot", "latest", "--cache-dir", ccache, "--stats", json.dumps(lq))
    cst = json.loads(o.stderr.strip().splitlines()[-1])
    o2, cli_warm = cli("query", "--repo", repo, "--snapshot", "latest", "--cache-dir", ccache, "--stats", json.dumps(lq))
    cst2 = json.loads(o2.stderr.strip().splitlines()[-1])
    assert json.loads(o.stdout) == want, name
    rows.append(dict(query=name, live_ms=live_t*1e3, attach_ms=attach_t*1e3, first_ms=first_t*1e3, warm_ms=warm_t*1e3,
                     cli_first_ms=cli_first*1e3, cli_warm_ms=cli_warm*1e3, attached_fetched=fetched,
                     cli_fetched=cst["fetched"]["bytes_fetched"], cli_warm_fetched=cst2["fetched"]["bytes_fetched"],
                     repository_bytes=repo_bytes))
live.terminate(); live.wait()
print(json.dumps({"points": points, "groups": GROUPS, "hosts": HOSTS, "hours": HOURS, "rows": rows}, indent=1))
print("| query | live p50 ms | attach ms | attached first query ms | attached warm p50 ms | warm / live | CLI cold ms | CLI warm ms | fetched: attach + first query | fetched: CLI cold | CLI warm | repository |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['query']} | {r['live_ms']:.1f} | {r['attach_ms']:.0f} | {r['first_ms']:.1f} | {r['warm_ms']:.1f} | {r['warm_ms']/r['live_ms']:.2f} | {r['cli_first_ms']:.0f} | {r['cli_warm_ms']:.0f} | {r['attached_fetched']:,} B ({100*r['attached_fetched']/r['repository_bytes']:.1f} %) | {r['cli_fetched']:,} B ({100*r['cli_fetched']/r['repository_bytes']:.1f} %) | {r['cli_warm_fetched']} B | {r['repository_bytes']:,} B |")
