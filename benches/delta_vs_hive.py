#!/usr/bin/env python3
"""The same job with a Hive target and with a Delta target: run time, bytes written, and what
Athena would bill for a query of the result.

    python3 benches/delta_vs_hive.py [--etl target/profiling/etl] [--runs 5]
        [--lineitem benches/data/tpch-sf1/parquet/lineitem]

The job reads TPC-H lineitem (Parquet; made with tpchgen-cli by benches/harness.py, or any
folder given) and writes it partitioned by l_shipmode (7 partitions), zstd, etl's default
order. Three steps, each timed as its own `etl run`, the variants alternating so that drift in
the machine hits both alike (medians of --runs):
  overwrite   the table's first publication (a fresh ETL_HOME each run);
  append      a second batch (the same rows again) added to it;
  rerun       the append run again for its date: it replaces what it added.
Then, once: the bytes the table's files hold, and `etl cost` of a query filtering one ship
mode and one year (what Athena would scan). For Delta, the bytes of its log too. Only the
standard library.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUERY = ("SELECT l_returnflag, sum(l_extendedprice) AS revenue FROM mart.lineitem "
         "WHERE l_shipmode = 'AIR' AND l_shipdate >= DATE '1997-01-01' AND l_shipdate < DATE '1998-01-01' "
         "GROUP BY l_returnflag")


def job(folder, source, table_format, mode):
    path = os.path.join(folder, f"{table_format}_{mode}.toml")
    with open(path, "w") as f:
        f.write(f"""name = "lineitem_{table_format}"
[[source]]
table = "raw.lineitem"
location = "{source}"
format = "parquet"
[[target]]
table = "mart.lineitem"
query = "SELECT * FROM raw.lineitem"
location = "{folder}/out_{table_format}/"
partition_by = ["l_shipmode"]
mode = "{mode}"
table_format = "{table_format}"
""")
    return path


def etl(binary, home, *args):
    started = time.perf_counter()
    result = subprocess.run([binary, *args, "-q"], env={**os.environ, "ETL_HOME": home},
                            capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{result.stderr}")
    return elapsed, result.stdout


def folder_bytes(folder, inside=None):
    total = 0
    for root, _, files in os.walk(folder):
        if inside is not None and inside not in root:
            continue
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--etl", default=os.path.join(REPO, "target/profiling/etl"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lineitem", default=os.path.join(REPO, "benches/data/tpch-sf1/parquet/lineitem"))
    args = parser.parse_args()
    binary, source = os.path.abspath(args.etl), os.path.abspath(args.lineitem)
    work = tempfile.mkdtemp(prefix="delta-vs-hive-")
    times = {(fmt, step): [] for fmt in ("hive", "delta") for step in ("overwrite", "append", "rerun")}
    try:
        for _ in range(args.runs):
            for fmt in ("hive", "delta"):
                home = os.path.join(work, f"home_{fmt}")
                shutil.rmtree(home, ignore_errors=True)
                shutil.rmtree(os.path.join(work, f"out_{fmt}"), ignore_errors=True)
                overwrite, append = job(work, source, fmt, "overwrite"), job(work, source, fmt, "append")
                times[(fmt, "overwrite")].append(etl(binary, home, "run", overwrite, "--logical-date", "2026-11-01")[0])
                times[(fmt, "append")].append(etl(binary, home, "run", append, "--logical-date", "2026-11-02")[0])
                times[(fmt, "rerun")].append(etl(binary, home, "run", append, "--logical-date", "2026-11-02")[0])
        print(f"lineitem from {source}, medians of {args.runs} alternating runs\n")
        print("| | hive | delta | delta/hive |")
        print("|---|---:|---:|---:|")
        for step in ("overwrite", "append", "rerun"):
            hive, delta = (statistics.median(times[(fmt, step)]) for fmt in ("hive", "delta"))
            print(f"| {step} wall s | {hive:.2f} | {delta:.2f} | {delta / hive:.2f} |")
        sizes, scans = {}, {}
        for fmt in ("hive", "delta"):
            home, out = os.path.join(work, f"home_{fmt}"), os.path.join(work, f"out_{fmt}")
            history = json.loads(etl(binary, home, "table", "history", "mart.lineitem", "--json")[1])
            sizes[fmt] = history["versions"][-1]["bytes"]
            cost = json.loads(etl(binary, home, "cost", QUERY, "--json")[1])
            scans[fmt] = cost["bytes_scanned"]
            if fmt == "delta":
                log = folder_bytes(out, inside="_delta_log")
        print(f"| table bytes (current version) | {sizes['hive']:,} | {sizes['delta']:,} | "
              f"{sizes['delta'] / sizes['hive']:.3f} |")
        print(f"| Delta log bytes | | {log:,} | |")
        print(f"| Athena scan of the query | {scans['hive']:,} | {scans['delta']:,} | "
              f"{scans['delta'] / scans['hive']:.3f} |")
        print(f"\nquery: {QUERY}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
