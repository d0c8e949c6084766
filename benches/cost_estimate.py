#!/usr/bin/env python3
"""W5: the cost estimate of a query over a 1,000-file Parquet table, cold (no footer cached:
1,000 footer reads) and warm (every footer in $ETL_HOME's cache).

Usage: python benches/cost_estimate.py [--files 1000] [--runs 5] [--etl target/release/etl]
The table is made here with pyarrow (Hive-partitioned by day, 100 rows a file) and crawled.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.parquet as pq

QUERY = "SELECT sum(amount) FROM bench.events WHERE day >= 20 AND id < 50000"


def make_table(root, files):
    for i in range(files):
        day = i // 10
        folder = os.path.join(root, f"day={day}")
        os.makedirs(folder, exist_ok=True)
        ids = list(range(i * 100, i * 100 + 100))
        table = pa.table({"id": ids, "amount": [x * 0.5 for x in ids], "note": [f"n{x}" for x in ids]})
        pq.write_table(table, os.path.join(folder, f"part-{i:05d}.parquet"))


def timed(command, env):
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {result.stderr}")
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--etl", default="target/release/etl")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "events")
        make_table(data, args.files)
        home = os.path.join(work, "home")
        env = {**os.environ, "ETL_HOME": home}
        subprocess.run([args.etl, "crawl", data, "--table", "bench.events", "-q"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        cold, warm = [], []
        for _ in range(args.runs):
            os.remove(os.path.join(home, "cache.sqlite")) if os.path.exists(os.path.join(home, "cache.sqlite")) else None
            cold.append(timed([args.etl, "cost", QUERY, "--json"], env))
            warm.append(timed([args.etl, "cost", QUERY, "--json"], env))
        print(f"cost estimate over {args.files} Parquet files ({args.runs} runs, each a whole `etl cost` process):")
        print(f"  cold (footers read)   median {statistics.median(cold):.3f} s  (min {min(cold):.3f}, max {max(cold):.3f})")
        print(f"  warm (footers cached) median {statistics.median(warm):.3f} s  (min {min(warm):.3f}, max {max(warm):.3f})")


if __name__ == "__main__":
    main()
