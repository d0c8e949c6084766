#!/usr/bin/env python3
"""etl against DuckDB, Polars, DataFusion and Spark, from a fresh machine to
benches/results/RESULTS.md in one command (see benches/README.md):

    python3 benches/harness.py [--sf 1] [--runs 3] [--etl target/release/etl]
        [--peers duckdb,polars,datafusion,spark] [--workloads W1,W2,W3,W4,W5] [--cluster 1,2]
        [--etl-build NAME=PATH ...]

It first re-executes itself inside benches/.venv (made here, with benches/requirements.txt).
"""
import argparse
import dataclasses
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version

import environment

BENCHES = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(BENCHES, ".venv")
REQUIREMENTS = os.path.join(BENCHES, "requirements.txt")
DATA = os.path.join(BENCHES, "data")
RESULTS = os.path.join(BENCHES, "results")
PEERS = ["duckdb", "polars", "datafusion", "spark"]
WORKLOADS = ["W1", "W2", "W3", "W4", "W5"]
PACKAGES = ["duckdb", "polars", "datafusion", "pyspark", "pyarrow", "tpchgen-cli"]

if __name__ == "__main__":
    environment.bootstrap(__file__, VENV, REQUIREMENTS)

# From here on this runs in benches/.venv, where these imports (and the peers' packages) resolve.
import datagen  # noqa: E402
import measure  # noqa: E402
import report  # noqa: E402
import workloads  # noqa: E402
from workloads import CheckFailed  # noqa: E402


def comma_list(allowed):
    def parse(text):
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = sorted(set(items) - set(allowed))
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)} (choose from {', '.join(allowed)})")
        return items
    return parse


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sf", type=float, default=1, help="TPC-H scale factor (default 1)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per engine, after one warm-up (default 3)")
    parser.add_argument("--etl", default="target/release/etl", help="the etl binary (default target/release/etl)")
    parser.add_argument("--peers", type=comma_list(PEERS), default=PEERS, help="default: " + ",".join(PEERS))
    parser.add_argument("--workloads", type=comma_list(WORKLOADS), default=WORKLOADS, help="default: " + ",".join(WORKLOADS))
    parser.add_argument("--cluster", type=lambda t: [int(n) for n in t.split(",") if n.strip()], default=[],
                        help="also run W2 and W3 on a Ballista cluster of `etl cluster` processes on this machine, "
                             "one with each number of executors given (e.g. 1,2)")
    parser.add_argument("--etl-build", action="append", default=[], metavar="NAME=PATH",
                        help="also time this etl binary (another build profile of it) with the commands of the etl rows, "
                             "its wall over --etl's in the notes; may be repeated")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    args.etl = os.path.abspath(args.etl)
    if not os.access(args.etl, os.X_OK):
        parser.error(f"no etl binary at {args.etl} (build it with `cargo build --release`, or pass --etl)")
    builds = {}
    for given in args.etl_build:
        name, _, path = given.partition("=")
        if not name or not os.access(path, os.X_OK):
            parser.error(f"--etl-build {given}: expected NAME=PATH of an etl binary")
        builds[f"etl ({name})"] = os.path.abspath(path)
    args.etl_build = builds
    return args


def run_once(contender, setup):
    """One measured run of contender, its output folder emptied and, if asked, a new ETL_HOME."""
    if contender.output:
        shutil.rmtree(contender.output, ignore_errors=True)
        os.makedirs(contender.output)
    env = {**os.environ, **contender.env}
    if contender.fresh_etl_home:
        env["ETL_HOME"] = tempfile.mkdtemp(prefix="run-", dir=setup.homes_dir)
    sample = measure.run(contender.argv, env)
    if contender.fresh_etl_home:
        shutil.rmtree(env["ETL_HOME"])
    return sample


def exit_failure(sample):
    """The CheckFailed for a run that exited non-zero, naming the last line of its stderr (the
    error message, for etl and for a Python traceback alike)."""
    lines = sample.stderr.strip().splitlines() or ["(nothing on stderr)"]
    return CheckFailed(f"exited with status {sample.exit_code}: {lines[-1]}")


def fail(what, contender, sample, reason):
    """Stops the harness, loudly: what failed, the command, and the end of its stderr."""
    tail = "\n    ".join(sample.stderr.strip().splitlines()[-20:])
    sys.exit(f"\n{what}: {contender.engine}: {reason}\ncommand: {shlex.join(contender.argv)}\n"
             f"stderr (last lines):\n    {tail}")


def warm_up(contender, setup, result):
    """The warm-up run, whose answer is checked: (the contender to time, the check's note).
    A wrong answer stops the harness, but for a W4 default inference that has a fallback: the
    failure is noted and the fallback is timed instead."""
    sample = run_once(contender, setup)
    try:
        if sample.exit_code != 0:
            raise exit_failure(sample)
        return contender, contender.check(sample)
    except CheckFailed as failure:
        if contender.fallback is None:
            fail(f"{result.key} CHECK FAILED", contender, sample, failure)
        result.notes.append(f"{contender.engine}, default inference: {failure} "
                            f"(timed instead: {contender.fallback.engine})")
        return warm_up(contender.fallback, setup, result)


def run_workload(workload, setup, runs):
    result = report.WorkloadResult(workload.key, workload.title)
    print(f"\n{workload.key}: {workload.title}", flush=True)
    checked = []
    for contender in workload.contenders:
        timed, note = warm_up(contender, setup, result)
        print(f"  warm-up {timed.engine}: ok ({note})", flush=True)
        checked.append((timed, note, []))
    for run in range(1, runs + 1):
        for contender, _, samples in checked:  # engines alternate, so drift hits them all alike
            sample = run_once(contender, setup)
            if sample.exit_code != 0:
                fail(f"{workload.key} RUN FAILED", contender, sample, exit_failure(sample))
            samples.append(sample)
            print(f"  run {run}/{runs} {contender.engine}: {sample.wall:.3f} s wall, {sample.cpu:.3f} s CPU, "
                  f"{sample.peak_bytes / 2**20:.0f} MiB", flush=True)
    result.engines = [report.EngineResult(c.engine, samples, note) for c, note, samples in checked]
    return result


def start_cluster(etl, executors, log_dir):
    """A scheduler and `executors` executors on loopback ports, each registered before this returns:
    (its --engine URL, its process ids). Their log goes to log_dir."""
    import socket

    def free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    env = {**os.environ, "RUST_LOG": "info"}
    address = f"127.0.0.1:{free_port()}"

    def start(args, name, ready):
        # Started by a shell that exits at once, so that the roles are not the harness's
        # children: measure.run waits for every child and counts their memory.
        path = os.path.join(log_dir, f"{name}.log")
        command = shlex.join([etl, "cluster", *args]) + f" < /dev/null > /dev/null 2> {shlex.quote(path)} & echo $!"
        pid = int(subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, check=True).stdout)
        deadline = time.monotonic() + 60
        while ready not in open(path).read():
            if time.monotonic() > deadline:
                sys.exit(f"etl cluster {args[0]} did not start:\n{open(path).read()}")
            time.sleep(0.05)
        return pid

    processes = [start(["scheduler", "--bind", address], f"scheduler-{executors}", "listening on")]
    for i in range(executors):
        work = tempfile.mkdtemp(prefix=f"executor-{executors}-{i}-")
        processes.append(start(["executor", "--scheduler", address, "--bind", "127.0.0.1:0", "--work-dir", work],
                               f"executor-{executors}-{i}", "registration succeed"))
    return f"df://{address}", processes


def with_builds(workload, builds):
    """The workload with each other etl build timed beside etl: the same commands, its binary."""
    extra = [dataclasses.replace(c, engine=name, argv=[path, *c.argv[1:]])
             for c in workload.contenders if c.engine == "etl" for name, path in builds.items()]
    return dataclasses.replace(workload, contenders=workload.contenders + extra)


def relative_to_local(result, builds):
    """Each cluster run's and other build's median wall over etl's, in its note."""
    local = next((e for e in result.engines if e.engine == "etl"), None)
    for engine in result.engines:
        if local and engine.engine.startswith("etl (cluster"):
            engine.note += f"; {engine.wall / local.wall:.2f}× local etl's wall (CPU, peak: the client's only)"
        elif local and engine.engine in builds:
            engine.note += f"; {engine.wall / local.wall:.3f}× etl's wall, {engine.cpu / local.cpu:.3f}× its CPU"


def run_w5(etl, runs):
    """W5 is benches/cost_estimate.py's; its output goes into RESULTS.md as it is."""
    print("\nW5: etl cost over 1,000 Parquet files (benches/cost_estimate.py)", flush=True)
    script = os.path.join(BENCHES, "cost_estimate.py")
    result = subprocess.run([sys.executable, script, "--etl", etl, "--runs", str(runs)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"\nW5 FAILED: {script} exited with status {result.returncode}: {result.stderr}")
    print(result.stdout, end="", flush=True)
    return result.stdout


def machine():
    with open("/proc/meminfo") as f:
        memory_kib = int(f.readline().split()[1])
    with open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), platform.machine())
    return f"{os.cpu_count()} cores ({model}), {memory_kib / 2**20:.0f} GiB, {platform.system()} {platform.release()}"


def versions(etl):
    found = {"etl": subprocess.run([etl, "--version"], capture_output=True, text=True).stdout.split()[-1]}
    found.update({name: version(name) for name in PACKAGES})
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    found["java"] = java[0] if java else "not found"
    return found


def write_results(results, meta, w5_output):
    os.makedirs(RESULTS, exist_ok=True)
    for name, text in [("RESULTS.md", report.markdown(results, meta, w5_output)),
                       ("results.svg", report.svg(results)),
                       ("results.json", report.results_json(results, meta, w5_output))]:
        with open(os.path.join(RESULTS, name), "w") as f:
            f.write(text)


def main():
    args = parse_args()
    started = time.perf_counter()
    log_dir = tempfile.mkdtemp(prefix="etl-bench-cluster-")
    # Before the harness reaps orphans: the roles' shells leave them to init, not to the harness.
    clusters, processes = {}, []
    for executors in args.cluster:
        engine, pids = start_cluster(args.etl, executors, log_dir)
        clusters[f"etl (cluster {executors})"] = engine
        processes += pids
    measure.become_subreaper()
    runs_dir, jobs_dir = os.path.join(DATA, "runs"), os.path.join(DATA, "jobs")
    shutil.rmtree(runs_dir, ignore_errors=True)
    os.makedirs(runs_dir)
    os.makedirs(jobs_dir, exist_ok=True)
    tpch = datagen.ensure_tpch(DATA, args.sf)
    ndjson = datagen.ensure_ndjson(DATA)
    meta = {"command": shlex.join(["python3", "benches/harness.py", *sys.argv[1:]]), "machine": machine(),
            "versions": versions(args.etl), "sf": args.sf, "runs": args.runs}
    # Engines run in runs_dir, where whatever they leave in their working directory is removed.
    os.chdir(runs_dir)
    results = []
    with tempfile.TemporaryDirectory(prefix="etl-bench-homes-") as homes:
        try:
            setup = workloads.Setup(args.etl, sys.executable, args.peers, tpch, ndjson, runs_dir, jobs_dir, homes,
                                    clusters)
            reference = workloads.Reference(tpch)
            for key in (k for k in args.workloads if k in workloads.BUILDERS):
                workload = with_builds(workloads.BUILDERS[key](setup, reference), args.etl_build)
                result = run_workload(workload, setup, args.runs)
                relative_to_local(result, args.etl_build)
                results.append(result)
        finally:
            for pid in processes:
                os.kill(pid, 9)
    w5_output = run_w5(args.etl, args.runs) if "W5" in args.workloads else None
    os.chdir(BENCHES)
    shutil.rmtree(runs_dir)
    write_results(results, meta, w5_output)
    print(f"\nSF{args.sf:g}, median of {args.runs} runs; etl/peer below 1 means etl took less\n")
    for result in results:
        print(report.console_table(result) + "\n")
    print(f"wrote {RESULTS}/RESULTS.md, results.svg, results.json in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
