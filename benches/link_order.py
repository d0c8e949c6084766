#!/usr/bin/env python3
"""Writes src/link_order.txt, the order in which the linker lays out the release binary's hot
functions (see src/build.rs): every function the benchmark's workloads and the example job
execute, hottest first, so that a run touches a few megabytes of code, not half of the binary's.

Usage: python3 benches/link_order.py [--etl target/release/etl] [--sf 0.1]

It re-executes itself in benches/.venv (the harness's), makes TPC-H at --sf and the NDJSON
events under benches/data/ as the harness does, and runs etl's commands of the harness's
workloads (benches/workloads.py) and the example job once each under valgrind's callgrind
(`valgrind` must be installed), which names every function that ran and what it cost.
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
import workloads  # noqa: E402

HEADER = """\
# The release binary's hot functions, hottest first: lld lays them out side by side, in this order,
# before every other function (src/build.rs). Written by benches/link_order.py from callgrind runs
# of the benchmark's workloads and the example job; regenerate it after upgrading dependencies.
"""


def training_runs(etl, tpch, ndjson, scratch):
    """[(name, argv, environment)]: etl's runs of the harness's workloads, then the example job,
    whose target sets no sort_by and so takes the sort etl chooses by default (W1 runs unsorted)."""
    setup = workloads.Setup(etl, sys.executable, [], tpch, ndjson, runs_dir=scratch, jobs_dir=scratch,
                            homes_dir=scratch)
    runs = []
    for key, build in workloads.BUILDERS.items():
        # No peers: the reference answers, used only to check a timed run, are never asked for.
        for contender in build(setup, None).contenders:
            home = tempfile.mkdtemp(prefix="home-", dir=scratch)
            runs.append((f"{key} {contender.engine}", contender.argv, {"ETL_HOME": home, **contender.env}))
    example = [etl, "run", os.path.join(ROOT, "sql", "weekly_orders.toml"), "--logical-date", "2026-11-30", "-q"]
    runs.append(("example job", example, {"ETL_HOME": tempfile.mkdtemp(prefix="home-", dir=scratch)}))
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
        for name, argv, run_env in training_runs(etl, tpch, ndjson, scratch):
            profile = os.path.join(scratch, "callgrind.out")
            print(f"{name} ({argv[1]}) under callgrind", flush=True)
            subprocess.run(["valgrind", "--tool=callgrind", "--demangle=no", "--compress-strings=no",
                            "--compress-pos=no", "--dump-line=no", f"--callgrind-out-file={profile}", *argv],
                           env={**os.environ, **run_env}, check=True,
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
