#!/usr/bin/env python3
"""W3 (the weekly job) at a larger scale under a memory limit: `etl run --memory-limit 2G` over
TPC-H SF10 Parquet (lineitem 59,986,052 rows), with the peak RSS of the process, the answer
checked against DuckDB's.

Usage: benches/.venv/bin/python benches/memory_limit.py [--sf 10] [--limit 2G] [--runs 1]
       [--etl target/release/etl]
The Parquet tables are made once with tpchgen-cli under benches/data/tpch-sfN/parquet/ (the
harness's layout; CSV is not needed here). Run `benches/harness.py` once first: it makes the
virtual environment with tpchgen-cli and DuckDB.
"""
import argparse
import glob
import math
import os
import statistics
import subprocess
import sys
import tempfile

import duckdb

import measure
from peers.common import WEEKLY

BENCHES = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(BENCHES, "data")


def ensure_parquet(sf):
    root = os.path.join(DATA, f"tpch-sf{sf:g}", "parquet")
    marker = root + ".complete"
    if not os.path.exists(marker):
        tpchgen = os.path.join(os.path.dirname(sys.executable), "tpchgen-cli")
        print(f"generating TPC-H SF{sf:g} lineitem and orders as Parquet in {root}", flush=True)
        subprocess.run([tpchgen, "parquet", "--scale-factor", f"{sf:g}", "--tables", "lineitem,orders",
                        "--parts", "1", "--output-dir", root, "--quiet"], check=True)
        open(marker, "w").close()
    return os.path.join(root, "lineitem"), os.path.join(root, "orders")


def job_file(folder, lineitem, orders, output):
    query = WEEKLY.format(lineitem="bench.lineitem", orders="bench.orders").replace('"', '\\"').replace("\n", "\\n")
    path = os.path.join(folder, "w3.toml")
    with open(path, "w") as f:
        f.write(f'''name = "bench_w3_limit"
[[source]]
table = "bench.lineitem"
location = "{lineitem}/"
format = "parquet"
[[source]]
table = "bench.orders"
location = "{orders}/"
format = "parquet"
[[target]]
table = "bench.weekly_w3"
query = "{query}"
location = "{output}/"
partition_by = ["l_returnflag"]
mode = "overwrite"
compression = "snappy"
''')
    return path


def expected(lineitem, orders):
    query = WEEKLY.format(lineitem=f"read_parquet('{lineitem}/*.parquet')", orders=f"read_parquet('{orders}/*.parquet')")
    return duckdb.sql(f"SELECT count(*), sum(revenue)::DOUBLE FROM ({query})").fetchall()[0]


def published(output):
    files = glob.glob(os.path.join(output, "**", "*.parquet"), recursive=True)
    return duckdb.sql(f"SELECT count(*), sum(revenue)::DOUBLE FROM read_parquet({files!r})").fetchall()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf", type=float, default=10)
    parser.add_argument("--limit", default="2G")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--etl", default=os.path.join(BENCHES, "..", "target", "release", "etl"))
    args = parser.parse_args()
    measure.become_subreaper()
    lineitem, orders = ensure_parquet(args.sf)
    rows, revenue = expected(lineitem, orders)
    samples = []
    with tempfile.TemporaryDirectory() as folder:
        for run in range(args.runs):
            output = os.path.join(folder, f"out-{run}")
            job = job_file(folder, lineitem, orders, output)
            env = dict(os.environ, ETL_HOME=os.path.join(folder, f"home-{run}"))
            sample = measure.run([os.path.abspath(args.etl), "run", job, "--memory-limit", args.limit, "-q"], env)
            if sample.exit_code != 0:
                sys.exit(f"etl failed (exit {sample.exit_code}): {sample.stderr}")
            got_rows, got_revenue = published(output)
            if got_rows != rows or not math.isclose(got_revenue, revenue, rel_tol=1e-9):
                sys.exit(f"wrong answer: {got_rows} rows, revenue {got_revenue}; DuckDB: {rows}, {revenue}")
            samples.append(sample)
            print(f"run {run + 1}: {sample.wall:.2f} s wall, {sample.cpu:.2f} s CPU, "
                  f"peak RSS {sample.peak_bytes / 2**20:,.0f} MiB", flush=True)
    print(f"\nW3 at SF{args.sf:g}, --memory-limit {args.limit}: {rows} rows, answer = DuckDB's; "
          f"median {statistics.median(s.wall for s in samples):.2f} s wall, "
          f"peak RSS {max(s.peak_bytes for s in samples) / 2**20:,.0f} MiB (max of {len(samples)} runs)")


if __name__ == "__main__":
    main()
