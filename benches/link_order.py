#!/usr/bin/env python3
"""Writes src/link_order.txt, the order in which the linker lays out the release binary's hot
functions (see src/build.rs): every function the benchmark's workloads and the example job
execute, hottest first, so that a run touches a few megabytes of code, not half of the binary's.

Usage: python3 benches/link_order.py [--etl target/release/etl] [--sf 0.1]

It re-executes itself in benches/.venv (the harness's), makes TPC-H at --sf and the NDJSON
events under benches/data/ as the harness does, and runs each workload once under valgrind's
callgrind (`valgrind` must be installed), which names every function that ran and what it cost.
Run it on a release build after a dependency upgrade: the file lists mangled names, whose hashes
change with the crates' versions, and a function it does not name is laid out with the cold ones.
"""
import argparse
import collections
import os
import subprocess
import sys
import tempfile

import environment

BENCHES = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCHES)
OUTPUT = os.path.join(ROOT, "src", "link_order.txt")

if __name__ == "__main__":
    environment.bootstrap(__file__, os.path.join(BENCHES, ".venv"), os.path.join(BENCHES, "requirements.txt"))

import datagen  # noqa: E402
from peers.common import Q1, WEEKLY  # noqa: E402
from workloads import LOGICAL_DATE, write_job  # noqa: E402

HEADER = """\
# The release binary's hot functions, hottest first: lld lays them out side by side, in this order,
# before every other function (src/build.rs). Written by benches/link_order.py from callgrind runs
# of the benchmark's workloads and the example job; regenerate it after upgrading dependencies.
"""


def training_runs(etl, tpch, ndjson, scratch):
    """[(name, argv, ETL_HOME)]: the commands whose functions go first, in the harness's shapes."""
    # write_job takes the harness's setup for its jobs folder only.
    jobs = argparse.Namespace(jobs_dir=scratch)

    def home(name):
        return os.path.join(scratch, f"home-{name}")

    runs = []
    # W1 as the harness times it (unsorted), and with the sort a target gets by default.
    for compression, options in (("snappy", {"sort_by": []}), ("zstd", {})):
        target = {"table": "bench.lineitem_w1", "query": "SELECT * FROM bench.lineitem_csv",
                  "location": os.path.join(scratch, f"w1-{compression}") + "/", "mode": "overwrite",
                  "compression": compression, **options}
        job = write_job(jobs, f"w1_{compression}", [("bench.lineitem_csv", tpch.lineitem_csv, "csv")], target)
        runs.append((f"W1 {compression}", [etl, "run", job, "--logical-date", LOGICAL_DATE, "-q"], home(f"w1-{compression}")))
    runs.append(("crawl", [etl, "crawl", tpch.lineitem_parquet, "--table", "bench.lineitem", "-q"], home("w2")))
    query = " ".join(Q1.format(lineitem="bench.lineitem").split())
    runs.append(("W2", [etl, "sql", query, "--format", "csv", "-q"], home("w2")))
    job = write_job(jobs, "w3", [("bench.lineitem", tpch.lineitem_parquet, "parquet"),
                                 ("bench.orders", tpch.orders_parquet, "parquet")],
                    {"table": "bench.weekly_w3", "query": WEEKLY.format(lineitem="bench.lineitem", orders="bench.orders"),
                     "location": os.path.join(scratch, "w3") + "/", "partition_by": ["l_returnflag"],
                     "mode": "overwrite", "compression": "snappy"})
    runs.append(("W3", [etl, "run", job, "--logical-date", LOGICAL_DATE, "-q"], home("w3")))
    runs.append(("W4", [etl, "infer", ndjson, "--json", "-q"], home("w4")))
    example = os.path.join(ROOT, "sql", "weekly_orders.toml")
    runs.append(("example job", [etl, "run", example, "--logical-date", "2026-11-30", "-q"], home("example")))
    return runs


def self_costs(profile, binary):
    """{mangled name: instructions executed in the function itself} for the functions of
    binary in a callgrind output written with --compress-strings=no --compress-pos=no."""
    costs = collections.Counter()
    function, in_binary, after_call = None, False, False
    with open(profile) as f:
        for line in f:
            if line.startswith("ob="):
                in_binary = os.path.realpath(line[3:].strip()) == binary
            elif line.startswith("fn="):
                # callgrind names the second level of a recursion name'2, and code without a
                # symbol by its address ("0x…") or "(below main)": no symbol to order.
                function = line[3:].strip().split("'")[0]
                function = None if function.startswith(("0x", "(")) else function
            elif line.startswith("calls="):
                after_call = True
                continue
            elif line[:1].isdigit() or line[:1] in "+-*":
                # The cost line after calls= is the callee's inclusive cost, not the caller's.
                if not after_call and in_binary and function:
                    costs[function] += int(line.split()[1])
            after_call = False
    return costs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--etl", default=os.path.join(ROOT, "target", "release", "etl"))
    parser.add_argument("--sf", type=float, default=0.1, help="TPC-H scale factor of the runs (default 0.1)")
    args = parser.parse_args()
    etl = os.path.realpath(args.etl)
    data = os.path.join(BENCHES, "data")
    tpch, ndjson = datagen.ensure_tpch(data, args.sf), datagen.ensure_ndjson(data)

    # Each run weighs the same: a function's share of its run's instructions, summed over runs.
    share = collections.Counter()
    with tempfile.TemporaryDirectory(prefix="link-order-") as scratch:
        for name, argv, home in training_runs(etl, tpch, ndjson, scratch):
            profile = os.path.join(scratch, "callgrind.out")
            print(f"{name} ({argv[1]}) under callgrind", flush=True)
            subprocess.run(["valgrind", "--tool=callgrind", "--demangle=no", "--compress-strings=no",
                            "--compress-pos=no", "--dump-line=no", f"--callgrind-out-file={profile}", *argv],
                           env={**os.environ, "ETL_HOME": home}, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            costs = self_costs(profile, etl)
            total = sum(costs.values())
            for function, cost in costs.items():
                share[function] += cost / total
            print(f"  {len(costs):,} functions ran", flush=True)
    order = [function for function, _ in share.most_common()]
    with open(OUTPUT, "w") as f:
        f.write(HEADER + "\n".join(order) + "\n")
    print(f"{len(order):,} functions in {os.path.relpath(OUTPUT)}")


if __name__ == "__main__":
    main()
