#!/usr/bin/env python3
"""Times wide points through a strata binary (issue 18, item 4): one point of 20k, 40k and
100k fields written, and a query over 10 series x 20k fields. Usage:

    scripts/wide-points.py target/release/strata

Starts its own server on a free port with the field caps raised, in a temporary directory.
Prints one line per figure: `name seconds`."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, body, ctype="text/plain"):
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", ctype)
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.status, r.read()


def wide(n):
    return ",".join(f"f{i}={i}" for i in range(n))


def main():
    binary = sys.argv[1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as d:
        srv = subprocess.Popen(
            [binary, "server", "--data-dir", os.path.join(d, "data"),
             "--listen", f"127.0.0.1:{port}",
             "--max-fields-per-point", "100000", "--max-fields-per-measure", "100000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            t = int(time.time())
            write = f"{base}/api/v1/write?group=g&precision=s"
            for n in (20_000, 40_000, 100_000):
                body = f"w{n} {wide(n)} {t}\n".encode()
                start = time.monotonic()
                status, _ = post(write, body)
                took = time.monotonic() - start
                assert status == 204, status
                print(f"write_one_point_{n // 1000}k_fields {took:.3f}")
            body = "".join(f"q,host=h{h} {wide(20_000)} {t}\n" for h in range(10)).encode()
            post(write, body)
            q = json.dumps({"group": "g", "measure": "q"}).encode()
            start = time.monotonic()
            status, answer = post(base + "/api/v1/query", q, "application/json")
            took = time.monotonic() - start
            assert status == 200, status
            series = json.loads(answer)["series"]
            assert len(series) == 10 and len(series[0]["columns"]) == 20_001
            print(f"query_10_series_20k_fields {took:.3f}")
        finally:
            srv.terminate()
            srv.wait(timeout=30)


if __name__ == "__main__":
    main()
