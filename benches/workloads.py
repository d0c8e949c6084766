"""The workloads: for each, the command every engine runs and the check of its answer.

Every answer is compared with DuckDB's (computed here, in-process, from the same input) or
with what the generator wrote. A check raises CheckFailed, or returns a short note for the
results table.
"""
import csv
import dataclasses
import functools
import glob
import io
import json
import math
import os
import subprocess
import tempfile
from typing import Callable, Optional

import duckdb

import datagen
from peers.common import Q1, WEEKLY

BENCHES = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(BENCHES, "peers")
LOGICAL_DATE = "2026-11-30"
# Engines differ in decimal scale: Polars rounds products to 2 places, DataFusion and Spark give
# averages of decimals 6 places.
REL_TOLERANCE, ABS_TOLERANCE = 1e-6, 1e-6

# W4: how each peer is told to read every file's schema when its default inference is wrong.
UNIFY = {"duckdb": "union_by_name", "polars": "diagonal_relaxed", "datafusion": "schema given"}


class CheckFailed(Exception):
    pass


@dataclasses.dataclass
class Contender:
    engine: str
    argv: list
    check: Callable                  # (Sample) -> note; raises CheckFailed
    output: Optional[str] = None     # a folder emptied before each run
    env: dict = dataclasses.field(default_factory=dict)
    fresh_etl_home: bool = False     # a new, empty ETL_HOME for every run
    fallback: Optional["Contender"] = None  # timed instead when this one's check fails


@dataclasses.dataclass
class Workload:
    key: str
    title: str
    contenders: list


@dataclasses.dataclass
class Setup:
    etl: str
    python: str
    peers: list
    tpch: datagen.Tpch
    ndjson: str
    runs_dir: str    # outputs of the runs
    jobs_dir: str    # generated job files
    homes_dir: str   # ETL_HOMEs, temporary
    clusters: dict = dataclasses.field(default_factory=dict)  # {engine name: its --engine df://… URL}


# ---- reading answers ------------------------------------------------------------------

def answer_json(sample):
    """The JSON document a peer printed as its last line of stdout."""
    lines = sample.stdout.strip().splitlines()
    if not lines:
        raise CheckFailed("printed no answer")
    return json.loads(lines[-1])


def parquet_glob(folder):
    return os.path.join(folder, "**", "*.parquet")


def same_rows(got, expected):
    """Row by row, strings equal and numbers within the tolerances."""
    if len(got) != len(expected):
        raise CheckFailed(f"{len(got)} rows, DuckDB has {len(expected)}: {got}")
    for got_row, expected_row in zip(got, expected):
        for got_value, expected_value in zip(got_row, expected_row):
            if isinstance(expected_value, str):
                equal = got_value == expected_value
            else:
                equal = math.isclose(float(got_value), float(expected_value),
                                     rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE)
            if not equal:
                raise CheckFailed(f"row {got_row} differs from DuckDB's {expected_row}")


class Reference:
    """DuckDB's answers, over the same input files the engines read."""

    def __init__(self, tpch):
        self.con = duckdb.connect()
        self.lineitem = f"read_parquet('{tpch.lineitem_parquet}/*.parquet')"
        self.orders = f"read_parquet('{tpch.orders_parquet}/*.parquet')"

    @functools.cached_property
    def lineitem_rows(self):
        [(rows,)] = self.con.sql(f"SELECT count(*) FROM {self.lineitem}").fetchall()
        return rows

    @functools.cached_property
    def q1(self):
        return [[float(v) if not isinstance(v, str) else v for v in row]
                for row in self.con.sql(Q1.format(lineitem=self.lineitem)).fetchall()]

    @functools.cached_property
    def weekly(self):
        """(rows, revenue, return flags) of W3's answer."""
        query = WEEKLY.format(lineitem=self.lineitem, orders=self.orders)
        [(rows, revenue, flags)] = self.con.sql(
            f"SELECT count(*), sum(revenue), list(DISTINCT l_returnflag ORDER BY l_returnflag) FROM ({query})"
        ).fetchall()
        return rows, float(revenue), flags

    def parquet_output(self, folder, extra=""):
        """(files, rows, bytes, *extra) of every Parquet file under folder."""
        files = glob.glob(parquet_glob(folder), recursive=True)
        if not files:
            raise CheckFailed(f"no Parquet file under {folder}")
        [row] = self.con.sql(f"SELECT count(*){extra} FROM read_parquet('{parquet_glob(folder)}', "
                             "hive_partitioning = false)").fetchall()
        return (len(files), row[0], sum(os.path.getsize(f) for f in files), *row[1:])


# ---- building contenders --------------------------------------------------------------

def write_job(setup, name, sources, target):
    """A job file in jobs_dir. sources: [(table, location, format)]; target: the [[target]]
    keys. JSON strings are valid TOML basic strings, so json.dumps quotes every value."""
    lines = [f"name = {json.dumps(name)}", ""]
    for table, location, fmt in sources:
        lines += ["[[source]]", f"table = {json.dumps(table)}",
                  f"location = {json.dumps(location + '/')}", f"format = {json.dumps(fmt)}", ""]
    lines += ["[[target]]"] + [f"{key} = {json.dumps(value)}" for key, value in target.items()]
    path = os.path.join(setup.jobs_dir, f"{name}.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def etl_run(setup, engine, job, output, check):
    return Contender(engine, [setup.etl, "run", job, "--logical-date", LOGICAL_DATE, "-q"], check,
                     output=output, fresh_etl_home=True)


def peer(setup, name, workload, args, check, output=None):
    script = os.path.join(PEERS, f"peer_{name}.py")
    return Contender(name, [setup.python, script, workload, *args], check, output=output)


def peer_outputs(setup, workload):
    """{peer: the folder it writes into}."""
    return {name: os.path.join(setup.runs_dir, f"{name}-{workload}") for name in setup.peers}


# ---- W1 -------------------------------------------------------------------------------

def w1(setup, ref):
    def check(output):
        def checked(sample):
            files, rows, size = ref.parquet_output(output)
            if rows != ref.lineitem_rows:
                raise CheckFailed(f"{rows} rows written, lineitem has {ref.lineitem_rows}")
            return f"{files} file{'s' * (files > 1)}, {rows:,} rows, {size / 2**20:.1f} MiB"
        return checked

    contenders = []
    for compression in ("snappy", "zstd"):
        output = os.path.join(setup.runs_dir, f"etl-w1-{compression}")
        # A conversion, as the peers do it: without the sort by l_shipdate etl would choose by
        # default (what that sort costs is measured apart; see benches/README.md).
        job = write_job(setup, f"bench_w1_{compression}", [("bench.lineitem_csv", setup.tpch.lineitem_csv, "csv")],
                        {"table": "bench.lineitem_w1", "query": "SELECT * FROM bench.lineitem_csv",
                         "location": output + "/", "mode": "overwrite", "compression": compression,
                         "sort_by": []})
        engine = "etl" if compression == "snappy" else "etl (zstd)"
        contenders.append(etl_run(setup, engine, job, output, check(output)))
    for name, output in peer_outputs(setup, "w1").items():
        contenders.append(peer(setup, name, "w1", [setup.tpch.lineitem_csv, output], check(output), output))
    return Workload("W1", "CSV to Parquet: lineitem CSV, schema inferred, to one snappy Parquet file", contenders)


# ---- W2 -------------------------------------------------------------------------------

def w2(setup, ref):
    # The table is crawled once, outside the timing, into an ETL_HOME the timed runs share.
    home = tempfile.mkdtemp(prefix="w2-", dir=setup.homes_dir)
    env = {**os.environ, "ETL_HOME": home}
    subprocess.run([setup.etl, "crawl", setup.tpch.lineitem_parquet, "--table", "bench.lineitem", "-q"],
                   env=env, check=True, stdout=subprocess.DEVNULL)

    def check_etl(sample):
        header, *rows = csv.reader(io.StringIO(sample.stdout))
        same_rows(rows, ref.q1)
        return "4 rows as DuckDB's"

    def check_peer(sample):
        same_rows(answer_json(sample), ref.q1)
        return "4 rows as DuckDB's"

    query = " ".join(Q1.format(lineitem="bench.lineitem").split())
    argv = [setup.etl, "sql", query, "--format", "csv", "-q"]
    contenders = [Contender("etl", argv, check_etl, env={"ETL_HOME": home})]
    contenders += [Contender(name, argv + ["--engine", url], check_etl, env={"ETL_HOME": home})
                   for name, url in setup.clusters.items()]
    contenders += [peer(setup, name, "w2", [setup.tpch.lineitem_parquet], check_peer) for name in setup.peers]
    return Workload("W2", "TPC-H Q1 over the lineitem Parquet", contenders)


# ---- W3 -------------------------------------------------------------------------------

def w3(setup, ref):
    def check(output):
        def checked(sample):
            files, rows, _, revenue = ref.parquet_output(output, ", sum(revenue)::DOUBLE")
            expected_rows, expected_revenue, flags = ref.weekly
            partitions = sorted(os.path.basename(p) for p in glob.glob(os.path.join(output, "l_returnflag=*")))
            if rows != expected_rows or not math.isclose(revenue, expected_revenue, rel_tol=REL_TOLERANCE):
                raise CheckFailed(f"{rows} rows, revenue {revenue}; DuckDB: {expected_rows}, {expected_revenue}")
            if partitions != [f"l_returnflag={flag}" for flag in flags]:
                raise CheckFailed(f"partition folders {partitions}, expected one per return flag {flags}")
            return f"{rows:,} rows in {len(partitions)} partitions, {files} files"
        return checked

    output = os.path.join(setup.runs_dir, "etl-w3")
    job = write_job(setup, "bench_w3", [("bench.lineitem", setup.tpch.lineitem_parquet, "parquet"),
                                        ("bench.orders", setup.tpch.orders_parquet, "parquet")],
                    {"table": "bench.weekly_w3", "query": WEEKLY.format(lineitem="bench.lineitem", orders="bench.orders"),
                     "location": output + "/", "partition_by": ["l_returnflag"], "mode": "overwrite",
                     "compression": "snappy"})
    contenders = [etl_run(setup, "etl", job, output, check(output))]
    for name, url in setup.clusters.items():
        run = etl_run(setup, name, job, output, check(output))
        contenders.append(dataclasses.replace(run, argv=run.argv + ["--engine", url]))
    for name, output in peer_outputs(setup, "w3").items():
        args = [setup.tpch.lineitem_parquet, setup.tpch.orders_parquet, output]
        contenders.append(peer(setup, name, "w3", args, check(output), output))
    return Workload("W3", "the weekly job: lineitem ⋈ orders of 1995, revenue per week and return flag, "
                          "Parquet partitioned by return flag", contenders)


# ---- W4 -------------------------------------------------------------------------------

def etl_count(setup, location):
    """The rows `etl` reads from location, through a crawled table (outside the timing)."""
    env = {**os.environ, "ETL_HOME": tempfile.mkdtemp(prefix="w4-", dir=setup.homes_dir)}
    subprocess.run([setup.etl, "crawl", location, "--table", "bench.events", "-q"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    result = subprocess.run([setup.etl, "sql", "SELECT count(*) AS n FROM bench.events", "--format", "csv", "-q"],
                            env=env, check=True, capture_output=True, text=True)
    return int(result.stdout.splitlines()[1])


def check_events_schema(columns):
    """The three traits of the generated files, whatever the engine's type names."""
    problems = []
    if "coupon" not in columns:
        problems.append("the optional field coupon is missing")
    if not any(word in columns.get("amount", "").lower() for word in ("double", "float")):
        problems.append(f"amount (ints, then floats) is {columns.get('amount')}")
    if "struct" not in columns.get("customer", "").lower():
        problems.append(f"customer (an object) is {columns.get('customer')}")
    if problems:
        raise CheckFailed("; ".join(problems))


def w4(setup, ref):
    def check_etl(sample):
        columns = {c["name"]: c["type"] for c in json.loads(sample.stdout)["columns"]}
        check_events_schema(columns)
        rows = etl_count(setup, setup.ndjson)
        if rows != datagen.NDJSON_ROWS:
            raise CheckFailed(f"the crawled table has {rows} rows, the files {datagen.NDJSON_ROWS}")
        return f"amount {columns['amount']}, customer {columns['customer']}; {rows:,} rows via crawl + sql"

    def check_peer(sample):
        answer = answer_json(sample)
        check_events_schema(answer["columns"])
        if answer["rows"] != datagen.NDJSON_ROWS:
            raise CheckFailed(f"{answer['rows']} rows, the files have {datagen.NDJSON_ROWS}")
        return f"amount {answer['columns']['amount']}; {answer['rows']:,} rows"

    contenders = [Contender("etl", [setup.etl, "infer", setup.ndjson, "--json", "-q"], check_etl, fresh_etl_home=True)]
    for name in setup.peers:
        contender = peer(setup, name, "w4", [setup.ndjson, "default"], check_peer)
        if name in UNIFY:
            fallback = peer(setup, name, "w4", [setup.ndjson, "unify"], check_peer)
            contender.fallback = dataclasses.replace(fallback, engine=f"{name} ({UNIFY[name]})")
        contenders.append(contender)
    return Workload("W4", f"schema inference over {datagen.NDJSON_FILES:,} NDJSON files "
                          f"({datagen.NDJSON_ROWS:,} rows), with a row count", contenders)


BUILDERS = {"W1": w1, "W2": w2, "W3": w3, "W4": w4}
