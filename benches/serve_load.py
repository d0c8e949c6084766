#!/usr/bin/env python3
"""Load on `etl serve`: requests per second and p50/p99 latency of `rows` and `query`, answered
from the cache and computed every time, on TPC-H lineitem, with `wrk` on loopback.

Usage: python3 benches/serve_load.py --lineitem DIR [--etl target/release/etl]
           [--seconds 10] [--connections 8] [--threads 2]

DIR is a folder of lineitem Parquet (`benches/harness.py --sf 1` makes
benches/data/tpch-sf1/parquet/lineitem/). It is crawled into a temporary ETL_HOME as
tpch.lineitem, a key is made, and for each of cached (--cache-ttl 300) and uncached
(--cache-ttl 0) the server is started on a free port and `wrk` (Debian's `wrk` package) runs
each request for --seconds. A result table (Markdown) is printed; nothing is written.

  rows:  GET /v1/tables/tpch.lineitem/rows?columns=...&where=l_orderkey:ge:5990000
         &where=l_returnflag:eq:R&limit=100 (lineitem is in order key order: the statistics
         prune all but the last row group)
  query: POST /v1/query, returned quantity and price per flag and status over shipments from
         1998-09-01 (TPC-H Q1's shape on a tail of the table), the date a bound parameter

Every request is checked once with Python before timing (status 200, the rows expected).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request

ROWS_PATH = (
    "/v1/tables/tpch.lineitem/rows?columns=l_orderkey,l_linenumber,l_shipdate,l_extendedprice"
    "&where=l_orderkey:ge:5990000&where=l_returnflag:eq:R&limit=100"
)
QUERY = {
    "sql": "SELECT l_returnflag, l_linestatus, sum(l_quantity) AS qty, sum(l_extendedprice) AS price, "
    "count(*) AS n FROM tpch.lineitem WHERE l_shipdate >= CAST($since AS DATE) "
    "GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus",
    "params": {"since": "1998-09-01"},
}


def etl(binary, home, *args):
    env = {**os.environ, "ETL_HOME": home, "ETL_CATALOG": "local"}
    result = subprocess.run([binary, *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"etl {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def start(binary, home, cache_ttl):
    env = {**os.environ, "ETL_HOME": home, "ETL_CATALOG": "local"}
    server = subprocess.Popen(
        [binary, "serve", "--bind", "127.0.0.1:0", "--cache-ttl", str(cache_ttl), "--queue", "64"],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    for line in server.stderr:
        if "listening on " in line:
            url = line.split("listening on ", 1)[1].strip()
            break
    else:
        sys.exit("etl serve did not start")
    # The access log is one line a request: drain it, or the pipe fills and the server waits.
    import threading
    threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
    return server, url


def request(url, key, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{url}{path}", data=data, headers={"Authorization": f"Bearer {key}"})
    if data is not None:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=600) as response:
        return json.loads(response.read())


def wrk(url, key, path, body, args, workdir):
    script = os.path.join(workdir, "request.lua")
    with open(script, "w") as f:
        f.write(f'wrk.headers["Authorization"] = "Bearer {key}"\n')
        if body is not None:
            f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
            f.write(f"wrk.body = {json.dumps(json.dumps(body))}\n")
    command = ["wrk", "--latency", "-t", str(args.threads), "-c", str(args.connections),
               "-d", f"{args.seconds}s", "--timeout", "60s", "-s", script, f"{url}{path}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {p: re.search(rf"\s{p}%\s+([\d.]+\w+)", out).group(1) for p in ("50", "99")}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, latency["50"], latency["99"], int(errors.group(1)) if errors else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lineitem", required=True)
    parser.add_argument("--etl", default="target/release/etl")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    binary = os.path.abspath(args.etl)
    results = []
    with tempfile.TemporaryDirectory() as work:
        home = os.path.join(work, ".etl")
        etl(binary, home, "crawl", os.path.abspath(args.lineitem), "--table", "tpch.lineitem", "-q")
        key = etl(binary, home, "serve", "keys", "create", "--name", "bench", "--tables", "tpch.*", "-q").strip()
        for mode, ttl in (("cached", 300), ("uncached", 0)):
            server, url = start(binary, home, ttl)
            try:
                page = request(url, key, ROWS_PATH)
                assert len(page["rows"]) == 100 and page["next_cursor"], page
                answer = request(url, key, "/v1/query", QUERY)
                assert answer["rows"] and answer["rows"][0][4] > 0, answer
                for name, path, body in (("rows", ROWS_PATH, None), ("query", "/v1/query", QUERY)):
                    rps, p50, p99, errors = wrk(url, key, path, body, args, work)
                    results.append((name, mode, rps, p50, p99, errors))
            finally:
                server.terminate()
                server.wait(timeout=60)
    print(f"wrk: {args.threads} threads, {args.connections} connections, {args.seconds} s each; etl: {binary}")
    print("| request | answers | requests/s | p50 | p99 | non-2xx |")
    print("|---|---|---:|---:|---:|---:|")
    for name, mode, rps, p50, p99, errors in results:
        print(f"| {name} | {mode} | {rps:.1f} | {p50} | {p99} | {errors} |")


if __name__ == "__main__":
    main()
