#!/usr/bin/env python3
"""Continuous archiving figures (BENCHMARKS.md, "archive"): one run, side by side.

1. RPO: a server with `--archive` under a steady paced line-protocol load. Two measures:
   - `strata_archive_lag_seconds` sampled from /metrics every 100 ms;
   - ack -> archived: for every acknowledged batch (ack at time a), the first moment an archive
     object whose last commit time is >= a was visible in the repository (commit times never
     decrease along the WAL, so that object holds the batch). An upper bound: the batch was
     committed at or before a.
2. Write latency (client send -> 204) of the same load without and with archiving, alternating
   phases on one data set, so the machine's drift hits both.
3. `restore --at` time against the WAL replayed: the archive of phase 2 restored to three
   instants (a third, two thirds, all of it), with `--dry-run --json` giving batches and bytes.

Usage: scripts/bench-archive.py --strata target/release/strata [--seconds 20] [--rate 200]
       [--points 100] [--writers 4] [--repeat 2]
Prints a JSON report and a markdown summary.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

PASSWORD = "bench-archive"


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class Server:
    def __init__(self, strata, data, extra, log):
        env = dict(os.environ, STRATA_REPO_PASSWORD=PASSWORD)
        self.p = subprocess.Popen(
            [strata, "server", "--data-dir", data, "--listen", "127.0.0.1:0"] + extra,
            stdout=subprocess.PIPE, stderr=open(log, "ab"), env=env, text=True)
        for line in self.p.stdout:
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)
                break
        else:
            raise SystemExit(f"server did not start, see {log}")
        threading.Thread(target=lambda: [None for _ in self.p.stdout], daemon=True).start()

    def metric(self, name):
        text = urllib.request.urlopen(self.url + "/metrics", timeout=5).read().decode()
        for l in text.splitlines():
            if l.startswith(name + " "):
                return float(l.split()[1])
        return None

    def kill(self):
        self.p.kill()
        self.p.wait()

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=120)


def load(url, seconds, rate, points, writers, t0, acks):
    """Paced writers: each sends rate/writers batches per second. Returns latencies (s)."""
    lat = []
    lock = threading.Lock()
    stop = time.time() + seconds
    per = writers / rate

    def writer(w):
        n = 0
        nxt = time.time()
        while time.time() < stop:
            body = "".join(
                f"arch,w=w{w},k=k{i % 10} v={n * points + i}i {t0 + (n * points + i) * 1000 + w}\n"
                for i in range(points))
            req = urllib.request.Request(
                url + "/api/v1/write?group=bench&precision=ns", data=body.encode(), method="POST")
            s = time.time()
            urllib.request.urlopen(req, timeout=30).read()
            e = time.time()
            with lock:
                lat.append(e - s)
                acks.append(e)
            n += 1
            nxt += per
            time.sleep(max(0.0, nxt - time.time()))

    ts = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat


def watch_archive(repo, stop, seen):
    """Records (first seen wall time, last commit time in s) of each archive object."""
    while not stop.is_set():
        for root, _, files in os.walk(os.path.join(repo, "archive")):
            for f in files:
                m = re.match(r"[0-9a-f]{16}-[0-9a-f]{16}_(\d{19})-(\d{19})$", f)
                if m and f not in seen:
                    seen[f] = (time.time(), int(m.group(2)) / 1e9)
        time.sleep(0.02)


def strata_json(strata, *args):
    env = dict(os.environ, STRATA_REPO_PASSWORD=PASSWORD)
    out = subprocess.run([strata, *args], check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata", required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rate", type=float, default=200, help="batches per second, all writers")
    ap.add_argument("--points", type=int, default=100, help="points per batch")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=2, help="off/on phase pairs")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-archive-")
    repo, data, log = f"{tmp}/repo", f"{tmp}/data", f"{tmp}/server.log"
    env = dict(os.environ, STRATA_REPO_PASSWORD=PASSWORD)
    subprocess.run([a.strata, "repo", "init", "--repo", repo], check=True, env=env,
                   capture_output=True)
    t0 = (int(time.time()) // 3600 - 2) * 3600 * 10**9
    off_lat, on_lat, lag, rpo, on_acks = [], [], [], [], []
    offset = 0
    archive_args = ["--repo", repo, "--archive"]
    for r in range(a.repeat):
        for phase in ("off", "on"):
            # One data dir per phase kind: the archived one keeps its chain across restarts.
            srv = Server(a.strata, f"{data}-{phase}",
                         archive_args if phase == "on" else ["--repo", repo], log)
            if phase == "on":
                while not (srv.metric("strata_archive_window_start_seconds") or 0) > 0:
                    time.sleep(0.05)
            acks, seen = [], {}
            stop = threading.Event()
            threads = []
            if phase == "on":
                def sample():
                    while not stop.is_set():
                        v = srv.metric("strata_archive_lag_seconds")
                        if v is not None:
                            lag.append(v)
                        time.sleep(0.1)
                threads = [threading.Thread(target=sample),
                           threading.Thread(target=watch_archive, args=(repo, stop, seen))]
                for t in threads:
                    t.start()
            lat = load(srv.url, a.seconds, a.rate, a.points, a.writers,
                       t0 + offset, acks)
            offset += int(a.seconds * a.rate / a.writers + 10) * a.points * 1000
            if phase == "on":
                time.sleep(2)  # let the archiver ship the tail
            stop.set()
            for t in threads:
                t.join()
            (on_lat if phase == "on" else off_lat).extend(lat)
            if phase == "on":
                on_acks.extend(acks)
                objs = sorted(seen.values(), key=lambda o: o[1])
                for ack in acks:
                    vis = [v for v, last in objs if last >= ack]
                    if vis:
                        rpo.append(min(vis) - ack)
            if phase == "on" and r == a.repeat - 1:
                srv.kill()
            else:
                srv.stop()
    # restore --at against the WAL replayed: at the acknowledgement a third, two thirds of the
    # way through the archived batches, and at the window's end.
    snaps = strata_json(a.strata, "snapshots", "--repo", repo, "--json")
    end = snaps["pitr"]["windows"][-1]["end_ns"]
    on_acks.sort()
    restores = []
    for frac in (1 / 3, 2 / 3, 1.0):
        at = end if frac == 1.0 else int(on_acks[int(len(on_acks) * frac)] * 1e9)
        at_s = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at // 10**9)) + \
            f".{at % 10**9:09d}Z"
        dest = f"{tmp}/restored-{frac:.2f}"
        plan = strata_json(a.strata, "restore", "--repo", repo, "--data-dir", dest, "--at", at_s,
                           "--dry-run", "--json")["plan"]["point_in_time"]
        s = time.time()
        subprocess.run([a.strata, "restore", "--repo", repo, "--data-dir", dest, "--at", at_s],
                       check=True, env=env, capture_output=True)
        restores.append({"fraction": round(frac, 2), "batches": plan["batches"],
                         "archive_bytes": plan["archive_bytes"],
                         "objects": len(plan["objects"]), "seconds": round(time.time() - s, 3)})
        shutil.rmtree(dest, ignore_errors=True)
    ms = lambda x: None if x is None else round(x * 1000, 1)
    report = {
        "load": {"batches_per_s": a.rate, "points_per_batch": a.points, "writers": a.writers,
                 "seconds_per_phase": a.seconds, "phase_pairs": a.repeat},
        "write_ms": {
            "off": {"n": len(off_lat), "p50": ms(pct(off_lat, 50)), "p99": ms(pct(off_lat, 99)),
                    "max": ms(max(off_lat))},
            "on": {"n": len(on_lat), "p50": ms(pct(on_lat, 50)), "p99": ms(pct(on_lat, 99)),
                   "max": ms(max(on_lat))},
        },
        "lag_metric_s": {"n": len(lag), "p50": pct(lag, 50), "p99": pct(lag, 99),
                         "max": max(lag) if lag else None},
        "ack_to_archived_ms": {"n": len(rpo), "p50": ms(pct(rpo, 50)), "p99": ms(pct(rpo, 99)),
                               "max": ms(max(rpo)) if rpo else None,
                               "mean": ms(statistics.mean(rpo)) if rpo else None},
        "restore_at": restores,
    }
    print(json.dumps(report, indent=1))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
