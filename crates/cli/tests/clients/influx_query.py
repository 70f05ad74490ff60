"""Runs InfluxQL queries through the `influxdb` Python client (PyPI), as a Grafana-like
caller would, and prints each raw statement result as one JSON line.

usage: influx_query.py HOST PORT DB QUERIES_FILE  (one query a line)
"""
import json
import sys

from influxdb import InfluxDBClient


def main():
    host, port, db, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    client = InfluxDBClient(host=host, port=port, database=db, timeout=30)
    for line in open(path, encoding="utf-8"):
        q = line.rstrip("\n")
        if not q:
            continue
        rs = client.query(q, epoch="ns")
        print(json.dumps(rs.raw), flush=True)


if __name__ == "__main__":
    main()
