#!/usr/bin/env python3
"""What a realistic set of checks costs a run: `etl run` with and without them, median wall time.

    python3 benches/checks_overhead.py [--etl target/profiling/etl] [--runs 5]
        [--lineitem benches/data/tpch-sf1]

Workloads (each `etl run` gets a fresh ETL_HOME, so each is a first publication):
  example        the example job (sql/weekly_orders.toml) on data/, its target checked with
                 not_null(segment, revenue), unique(order_week, segment), row_count >= 1 and
                 revenue >= 0;
  lineitem_csv   TPC-H lineitem CSV, schema inferred, to one zstd Parquet table, checked with
                 not_null(l_orderkey, l_partkey, l_suppkey, l_linenumber),
                 unique(l_orderkey, l_linenumber), row_count >= 1 and
                 l_quantity > 0 AND l_discount BETWEEN 0 AND 0.1;
  lineitem_pq    the same from the Parquet lineitem.
Runs alternate between the variants, so drift in the machine hits both alike. Only the
standard library; the machine is shared, so give --runs 5 or more and read the spread.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LINEITEM_CHECKS = """
[[target.check]]
not_null = ["l_orderkey", "l_partkey", "l_suppkey", "l_linenumber"]
[[target.check]]
unique = ["l_orderkey", "l_linenumber"]
[[target.check]]
row_count = { min = 1 }
[[target.check]]
expression = "l_quantity > 0 AND l_discount BETWEEN 0 AND 0.1"
"""

EXAMPLE_CHECKS = """
[[target.check]]
not_null = ["segment", "revenue"]
[[target.check]]
unique = ["order_week", "segment"]
[[target.check]]
row_count = { min = 1 }
[[target.check]]
expression = "revenue >= 0"
"""


def lineitem_job(folder, source, fmt, checks):
    path = os.path.join(folder, f"lineitem_{fmt}{'_checked' if checks else ''}.toml")
    with open(path, "w") as job:
        job.write(f"""name = "lineitem_{fmt}"
[[source]]
table = "raw.lineitem"
location = "{source}"
format = "{fmt}"
[[target]]
table = "curated.lineitem"
query = "SELECT * FROM raw.lineitem"
location = "{folder}/out_{fmt}{'_checked' if checks else ''}/"
{checks}""")
    return path


def example_job(folder, checks):
    sql = os.path.join(folder, "sql")
    if not os.path.exists(sql):
        shutil.copytree(os.path.join(REPO, "sql"), sql)
        shutil.copytree(os.path.join(REPO, "data"), os.path.join(folder, "data"))
    path = os.path.join(sql, f"weekly_orders{'_checked' if checks else ''}.toml")
    with open(os.path.join(sql, "weekly_orders.toml")) as original, open(path + ".tmp", "w") as job:
        job.write(original.read() + checks)
    os.replace(path + ".tmp", path)
    return path


def run(etl, job, date):
    home = tempfile.mkdtemp(prefix="etl-bench-home-")
    try:
        started = time.perf_counter()
        result = subprocess.run([etl, "run", job, "--logical-date", date, "--json", "-q"],
                                env={**os.environ, "ETL_HOME": home}, capture_output=True, text=True)
        took = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(f"etl run {job} failed ({result.returncode}):\n{result.stderr}")
        return took
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--etl", default=os.path.join(REPO, "target", "profiling", "etl"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lineitem", default=os.path.join(REPO, "benches", "data", "tpch-sf1"))
    parser.add_argument("--workloads", default="example,lineitem_csv,lineitem_pq")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="etl-bench-checks-")
    try:
        workloads = {
            "example": (example_job(work, ""), example_job(work, EXAMPLE_CHECKS), "2026-11-30"),
            "lineitem_csv": (lineitem_job(work, f"{args.lineitem}/csv/lineitem/", "csv", ""),
                             lineitem_job(work, f"{args.lineitem}/csv/lineitem/", "csv", LINEITEM_CHECKS),
                             "2026-11-30"),
            "lineitem_pq": (lineitem_job(work, f"{args.lineitem}/parquet/lineitem/", "parquet", ""),
                            lineitem_job(work, f"{args.lineitem}/parquet/lineitem/", "parquet", LINEITEM_CHECKS),
                            "2026-11-30"),
        }
        print(f"{'workload':<14} {'without':>9} {'with':>9} {'overhead':>9}   runs (s): without | with")
        for name in args.workloads.split(","):
            plain, checked, date = workloads[name]
            run(args.etl, plain, date)  # warm the page cache
            times = {"plain": [], "checked": []}
            for _ in range(args.runs):
                times["plain"].append(run(args.etl, plain, date))
                times["checked"].append(run(args.etl, checked, date))
            without, with_checks = statistics.median(times["plain"]), statistics.median(times["checked"])
            spread = " ".join(f"{t:.2f}" for t in times["plain"]) + " | " + " ".join(f"{t:.2f}" for t in times["checked"])
            print(f"{name:<14} {without:>8.2f}s {with_checks:>8.2f}s {100 * (with_checks / without - 1):>+8.1f}%   {spread}",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
