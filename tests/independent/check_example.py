#!/usr/bin/env python3
"""Independent check of the example job's Parquet output.

`etl` reads and writes its own data, so its own tests can agree with themselves about
something wrong. Here readers that are not our code check what `etl run
sql/weekly_orders.toml` publishes: pyarrow and DuckDB read the output, and DuckDB computes
the expected answer straight from the raw CSV and JSON with the job's logic written again by
hand. Nothing of etl's is reused except the binary under test and the job's inputs.

Usage: python tests/independent/check_example.py path/to/etl [--on-cluster]

With --on-cluster, the same checks run with every job and query on an Apache Ballista cluster:
a scheduler and two executors started here as `etl cluster` processes on loopback ports, and
ETL_ENGINE pointing at the scheduler. The Parquet the executors wrote is then read by DuckDB and
pyarrow and compared with DuckDB's own computation, as a local run's is, and the executors'
logs must show the tasks they ran (8).

The job writes to a location relative to its own file, so sql/ and data/ are copied to a
temporary folder and the copy is run there with a temporary ETL_HOME: the repository is not
touched. One line is printed per check; the first failure stops with a non-zero exit.

  1. the run (logical date 2026-11-30) succeeds, rejects nothing, and its report matches
     the files on disk (files, partitions, bytes);
  2. pyarrow.dataset and DuckDB's read_parquet, both with Hive partitioning, see the same
     rows, as many as the report says;
  3. those rows equal DuckDB's own computation from the raw files, row by row on
     (order_week, segment), numbers exact to the cent (sums done in DECIMAL, not DOUBLE);
  4. every file is what Athena expects: ZSTD column chunks, min/max statistics, column and
     offset indexes, no partition column inside, decimal(14,2)/decimal(12,2), int64, string;
  5. a second run of the same logical date gives the same rows and leaves exactly one file
     per partition, all its own: the first run's files and any staging folder are gone from
     the folders readers list;
  6. the catalog (`etl sql` with the same ETL_HOME) counts the same rows;
  7. the first run's files are kept for rollback under `_etl_retained/`, not ending in
     `.parquet` (DuckDB's `**/*.parquet` would read them); a run whose check of severity
     error fails exits 1 and leaves the files, the catalog, the table's history and what
     DuckDB reads as they were.

Layout accepted: LOCATION/order_week=YYYY-MM-DD/[run-RUN_ID/]part-RUN_ID-N.zstd.parquet (etl
puts each run's files of a partition in a `run-` folder that Hive readers skip), and
LOCATION/_etl_retained/ for replaced versions' files.
"""
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import tomllib
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOGICAL_DATE = datetime.date(2026, 11, 30)
TARGET_TABLE = "curated.weekly_revenue"
PARTITION_KEY = "order_week"
KEY = (PARTITION_KEY, "segment")
CENT = Decimal("0.01")

# Column name -> (Parquet physical types accepted, logical type as pyarrow prints it).
# Decimals may be stored as INT64 or fixed-length bytes (both valid Parquet, both read by
# Athena); integer columns are plain INT64 (logical type None or Int(64, signed)).
EXPECTED_COLUMNS = {
    "segment": ({"BYTE_ARRAY"}, {"String"}),
    "orders": ({"INT64"}, {"None", "Int(bitWidth=64, isSigned=true)"}),
    "customers": ({"INT64"}, {"None", "Int(bitWidth=64, isSigned=true)"}),
    "revenue": ({"INT64", "FIXED_LEN_BYTE_ARRAY"}, {"Decimal(precision=14, scale=2)"}),
    "revenue_per_customer": ({"INT64", "FIXED_LEN_BYTE_ARRAY"}, {"Decimal(precision=12, scale=2)"}),
    "segment_rank": ({"INT64"}, {"None", "Int(bitWidth=64, isSigned=true)"}),
    "revenue_change": ({"INT64", "FIXED_LEN_BYTE_ARRAY"}, {"Decimal(precision=14, scale=2)"}),
}


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


# --- running etl -------------------------------------------------------------------------

def etl(binary, work, home, *args):
    """Run etl with the temporary ETL_HOME and the local catalog; return its stdout."""
    env = {**os.environ, "ETL_HOME": home, "ETL_CATALOG": "local"}
    try:
        result = subprocess.run([binary, *args], cwd=work, env=env, capture_output=True,
                                text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CheckFailed(f"cannot run `etl {' '.join(args)}`: {error}") from error
    check(result.returncode == 0,
          f"`etl {' '.join(args)}` exited {result.returncode}\nstdout: {result.stdout}\n"
          f"stderr: {result.stderr}")
    return result.stdout


def run_job(binary, work, home):
    job = os.path.join(work, "sql", "weekly_orders.toml")
    report = json.loads(etl(binary, work, home, "run", job, "--logical-date",
                            LOGICAL_DATE.isoformat(), "--json"))
    check(report.get("status") == "succeeded",
          f"run status is {report.get('status')!r}, error: {report.get('error')}")
    check(report.get("rejected_rows") == 0, f"the run rejected {report.get('rejected_rows')} rows")
    check(len(report["targets"]) == 1 and report["targets"][0]["table"] == TARGET_TABLE,
          f"unexpected targets in the report: {report['targets']}")
    return report


# --- the output folder -------------------------------------------------------------------

def list_output(output):
    """{partition value: [parquet files]} under output, failing on anything else found."""
    partitions = {}
    for entry in sorted(os.listdir(output)):
        check(entry != "_etl_staging", f"a staging folder is left behind: {output}/{entry}")
        if entry == "_etl_retained":
            continue  # replaced versions' files, kept for rollback where no reader lists them
        match = re.fullmatch(rf"{PARTITION_KEY}=(\d{{4}}-\d{{2}}-\d{{2}})", entry)
        check(match, f"unexpected entry in the output folder: {entry}")
        files = []
        for root, dirs, names in os.walk(os.path.join(output, entry)):
            relative = os.path.relpath(root, output)
            check(relative.count(os.sep) <= 1, f"unexpected nesting: {relative}/{dirs}")
            check(relative == entry or os.path.basename(root).startswith("run-"),
                  f"unexpected folder in a partition: {relative}")
            for name in names:
                check(re.fullmatch(r"part-.+\.zstd\.parquet", name),
                      f"unexpected file in the output: {relative}/{name}")
                files.append(os.path.join(root, name))
        partitions[match.group(1)] = sorted(files)
    return partitions


def check_report_matches_disk(report, partitions):
    target = report["targets"][0]
    files = [f for fs in partitions.values() for f in fs]
    check(target["files"] == len(files), f"report says {target['files']} files, {len(files)} on disk")
    check(target["partitions"] == len(partitions),
          f"report says {target['partitions']} partitions, {len(partitions)} on disk")
    size = sum(os.path.getsize(f) for f in files)
    check(target["bytes"] == size, f"report says {target['bytes']} bytes, {size} on disk")
    strangers = [f for f in files if report["run_id"] not in os.path.basename(f)]
    check(not strangers, f"files not written by run {report['run_id']}: {strangers}")


# --- reading the output ------------------------------------------------------------------

def keyed(rows, what):
    """Rows as {(order_week, segment): row}, failing on duplicate keys."""
    result = {}
    for row in rows:
        key = tuple(row[k] for k in KEY)
        check(key not in result, f"{what}: duplicate row for {key}")
        result[key] = row
    return result


def read_with_pyarrow(output):
    partitioning = ds.partitioning(pa.schema([(PARTITION_KEY, pa.date32())]), flavor="hive")
    table = ds.dataset(output, format="parquet", partitioning=partitioning).to_table()
    return keyed(table.to_pylist(), "pyarrow")


def read_with_duckdb(output):
    relation = duckdb.sql(
        f"SELECT * FROM read_parquet('{output}/**/*.parquet', hive_partitioning = true)")
    rows = [dict(zip(relation.columns, values)) for values in relation.fetchall()]
    return keyed(rows, "DuckDB")


# --- the expected answer, from the raw files ---------------------------------------------

def expected_rows(work):
    """The job's logic written again in DuckDB, over the raw CSV and JSON.

    Prices and discounts are read as DECIMAL so the sums are exact; DuckDB's decimal division
    goes through DOUBLE, so revenue per customer is divided and rounded here with Decimal
    (half away from zero, like SQL round).
    """
    with open(os.path.join(work, "sql", "weekly_orders.toml"), "rb") as f:
        params = tomllib.load(f)["params"]
    week_start = LOGICAL_DATE - datetime.timedelta(days=LOGICAL_DATE.weekday())  # its Monday
    window_start = week_start - datetime.timedelta(weeks=params["weeks"])
    orders = os.path.join(work, "data", "orders", "*", "*.csv")
    customers = os.path.join(work, "data", "customers", "customers.json")
    sql = f"""
    WITH raw_orders AS (
        SELECT * FROM read_csv('{orders}', header = true, hive_partitioning = true,
                               hive_types = {{'order_date': 'DATE'}},
                               types = {{'Customer ID': 'BIGINT', 'Status': 'VARCHAR',
                                        'Quantity': 'BIGINT', 'Unit Price': 'DECIMAL(12, 4)',
                                        'Discount': 'DECIMAL(6, 4)', 'Channel': 'VARCHAR'}})
    ),
    completed AS (
        SELECT "Customer ID" AS customer_id,
               "Quantity" * "Unit Price" * (1 - coalesce("Discount", 0)) AS net_amount,
               CAST(date_trunc('week', order_date) AS DATE) AS order_week
        FROM raw_orders
        WHERE order_date >= DATE '{window_start}' AND order_date < DATE '{week_start}'
          AND "Status" = 'completed'
          AND ('{params["channel"]}' = 'all' OR "Channel" = '{params["channel"]}')
    ),
    per_segment AS (
        SELECT o.order_week, c.segment, count(*) AS orders,
               count(DISTINCT o.customer_id) AS customers, sum(o.net_amount) AS revenue
        FROM completed AS o
        JOIN read_json('{customers}', format = 'newline_delimited') AS c
          ON c.customer_id = o.customer_id
        GROUP BY o.order_week, c.segment
    )
    SELECT order_week, segment, orders, customers,
           round(revenue, 2) AS revenue,
           revenue AS exact_revenue,
           rank() OVER (PARTITION BY order_week ORDER BY revenue DESC) AS segment_rank,
           round(revenue - lag(revenue) OVER (PARTITION BY segment ORDER BY order_week), 2)
               AS revenue_change
    FROM per_segment
    """
    relation = duckdb.sql(sql)
    check(relation.types[relation.columns.index("exact_revenue")].id == "decimal",
          "the expected revenue is not computed in DECIMAL")
    rows = [dict(zip(relation.columns, values)) for values in relation.fetchall()]
    for row in rows:
        exact = row.pop("exact_revenue")
        row["revenue_per_customer"] = (exact / row["customers"]).quantize(CENT, ROUND_HALF_UP)
    return keyed(rows, "expected")


# --- comparing rows ----------------------------------------------------------------------

def same_value(ours, theirs):
    if ours is None or theirs is None:
        return ours is None and theirs is None
    if isinstance(theirs, Decimal):
        # Exact at cent precision: ours must be a decimal with at most 2 places, equal.
        return isinstance(ours, Decimal) and ours == ours.quantize(CENT) and ours == theirs
    return type(ours) is type(theirs) and ours == theirs


def compare_rows(ours, theirs, what):
    missing, extra = sorted(theirs.keys() - ours.keys()), sorted(ours.keys() - theirs.keys())
    check(not missing and not extra, f"{what}: rows missing {missing}, rows extra {extra}")
    for key in sorted(theirs):
        mine, other = ours[key], theirs[key]
        check(mine.keys() == other.keys(),
              f"{what}: columns differ: {sorted(mine)} against {sorted(other)}")
        for column in other:
            check(same_value(mine[column], other[column]),
                  f"{what}: {column} differs for {key}: ours {mine[column]!r}, "
                  f"theirs {other[column]!r}")


def check_first_weeks_have_no_change(rows):
    first_week = {}
    for week, segment in sorted(rows):
        first_week.setdefault(segment, week)
    for (week, segment), row in rows.items():
        is_first = first_week[segment] == week
        check((row["revenue_change"] is None) == is_first,
              f"revenue_change for {segment} in {week} is {row['revenue_change']!r} "
              f"(first week of the segment in the window: {is_first})")


# --- Parquet properties ------------------------------------------------------------------

def check_parquet_file(path):
    parquet = pq.ParquetFile(path)
    metadata, schema = parquet.metadata, parquet.schema
    names = [schema.column(i).name for i in range(len(schema))]
    check(PARTITION_KEY not in names and PARTITION_KEY not in parquet.schema_arrow.names,
          f"{path}: the partition column {PARTITION_KEY} is stored inside the file")
    check(names == list(EXPECTED_COLUMNS), f"{path}: columns are {names}")
    for i, name in enumerate(names):
        column = schema.column(i)
        physical, logical = EXPECTED_COLUMNS[name]
        check(column.physical_type in physical and str(column.logical_type) in logical,
              f"{path}: {name} is {column.physical_type} / {column.logical_type}, "
              f"want one of {sorted(physical)} / {sorted(logical)}")
    check(metadata.num_rows > 0 and metadata.num_row_groups > 0, f"{path}: no rows")
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for i in range(row_group.num_columns):
            chunk = row_group.column(i)
            where = f"{path}: row group {group} column {chunk.path_in_schema}"
            check(chunk.compression == "ZSTD", f"{where} is compressed with {chunk.compression}")
            check(chunk.is_stats_set, f"{where} has no statistics")
            stats = chunk.statistics
            all_null = stats.null_count == row_group.num_rows
            check(stats.has_min_max or all_null, f"{where} has no min/max statistics")
            check(chunk.has_column_index, f"{where} has no column index")
            check(chunk.has_offset_index, f"{where} has no offset index")


# --- the checks, in order ----------------------------------------------------------------

def run_checks(binary, work):
    home = os.path.join(work, "home")
    output = os.path.join(work, ".etl", "warehouse", "weekly_revenue")

    report = run_job(binary, work, home)
    first_files = list_output(output)
    check_report_matches_disk(report, first_files)
    target = report["targets"][0]
    print(f"ok  1 run {report['run_id']} succeeded: {target['rows']} rows, {target['files']} "
          f"files, {target['partitions']} partitions, {target['bytes']} bytes, nothing rejected")

    arrow_rows, duck_rows = read_with_pyarrow(output), read_with_duckdb(output)
    compare_rows(arrow_rows, duck_rows, "pyarrow against DuckDB")
    check(len(duck_rows) == target["rows"],
          f"the readers see {len(duck_rows)} rows, the report says {target['rows']}")
    print(f"ok  2 pyarrow and DuckDB read the same {len(duck_rows)} rows, as the report says")

    expected = expected_rows(work)
    compare_rows(duck_rows, expected, "our output against DuckDB's computation from raw files")
    check_first_weeks_have_no_change(duck_rows)
    weeks = sorted({week for week, _ in expected})
    print(f"ok  3 every row equals DuckDB's computation from the raw CSV and JSON "
          f"({len(expected)} rows, weeks {weeks[0]} to {weeks[-1]})")

    files = [f for fs in first_files.values() for f in fs]
    for path in files:
        check_parquet_file(path)
    print(f"ok  4 {len(files)} files: ZSTD, min/max statistics, column and offset indexes, "
          f"no {PARTITION_KEY} inside, Athena types")

    rerun = run_job(binary, work, home)
    second_files = list_output(output)
    check_report_matches_disk(rerun, second_files)
    check(second_files.keys() == first_files.keys(),
          f"partitions after the rerun: {sorted(second_files)}, before: {sorted(first_files)}")
    crowded = {p: fs for p, fs in second_files.items() if len(fs) != 1}
    check(not crowded, f"partitions without exactly one file after the rerun: {crowded}")
    leftovers = [f for f in files if os.path.exists(f)]
    check(not leftovers, f"the first run's files survived the rerun: {leftovers}")
    compare_rows(read_with_duckdb(output), duck_rows, "after the rerun against before (DuckDB)")
    compare_rows(read_with_pyarrow(output), arrow_rows, "after the rerun against before (pyarrow)")
    print(f"ok  5 rerun {rerun['run_id']} replaced every partition: same {len(duck_rows)} rows, "
          f"one file per partition, no leftovers, no staging folder")

    counted = json.loads(etl(binary, work, home, "sql",
                             f"SELECT count(*) AS n FROM {TARGET_TABLE}", "--format", "json"))
    check(counted == [{"n": len(duck_rows)}],
          f"the catalog answers {counted}, the files hold {len(duck_rows)} rows")
    print(f"ok  6 the catalog counts the same {len(duck_rows)} rows")

    retained = [f for f in all_files(output) if "/_etl_retained/" in f]
    check(len(retained) == len(files) and all(f.endswith(".parquet.retained") for f in retained),
          f"the first run's {len(files)} files are kept for rollback out of readers' sight: {retained}")
    run_failing_check(binary, work, home, output, duck_rows)
    print(f"ok  7 a run whose check failed published nothing: the same files, catalog and "
          f"history, and DuckDB reads the same {len(duck_rows)} rows")


def all_files(output):
    return sorted(os.path.join(root, name) for root, _, names in os.walk(output) for name in names)


def run_failing_check(binary, work, home, output, duck_rows):
    """A run whose check of severity error fails: exit 1, and readers see what they saw."""
    job = os.path.join(work, "sql", "weekly_orders_checked.toml")
    with open(os.path.join(work, "sql", "weekly_orders.toml")) as original, open(job, "w") as checked:
        # The target is the file's last table: the check belongs to it.
        checked.write(original.read() + '\n[[target.check]]\nname = "impossible"\nrow_count = { min = 1000000000 }\n')
    before = (all_files(output), etl(binary, work, home, "table", "history", TARGET_TABLE, "--json"),
              etl(binary, work, home, "schema", "show", TARGET_TABLE, "--json"))
    env = {**os.environ, "ETL_HOME": home, "ETL_CATALOG": "local"}
    result = subprocess.run([binary, "run", job, "--logical-date", LOGICAL_DATE.isoformat(), "--json"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=600)
    check(result.returncode == 1, f"a failed check exits 1, not {result.returncode}: {result.stderr}")
    report = json.loads(result.stdout)
    failed = [c for c in report["checks"] if c["status"] == "failed"]
    check([c["name"] for c in failed] == ["impossible"], f"the failed checks: {report['checks']}")
    after = (all_files(output), etl(binary, work, home, "table", "history", TARGET_TABLE, "--json"),
             etl(binary, work, home, "schema", "show", TARGET_TABLE, "--json"))
    check(after[0] == before[0], f"the files changed: {before[0]} -> {after[0]}")
    check(after[1:] == before[1:], "the catalog or the table's history changed")
    compare_rows(read_with_duckdb(output), duck_rows, "after a failed check against before (DuckDB)")


# --- a cluster ---------------------------------------------------------------------------

class Role:
    """One `etl cluster` process, ready once its log says so; its log kept for a failure."""

    def __init__(self, binary, args, ready):
        self.log = []
        self.process = subprocess.Popen([binary, "cluster", *args], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "RUST_LOG": "info"})
        for line in self.process.stderr:
            self.log.append(line)
            if ready in line:
                break
        else:
            raise CheckFailed(f"`etl cluster {' '.join(args)}` ended before '{ready}':\n{''.join(self.log)}")
        # The log is drained for the rest of the process's life: a full pipe would stop it.
        threading.Thread(target=self.log.extend, args=(self.process.stderr,), daemon=True).start()

    def stop(self):
        self.process.kill()
        self.process.wait()


def start_cluster(binary, work, executors=2):
    """A scheduler and `executors` registered executors: (the --engine URL, the processes)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    roles = [Role(binary, ["scheduler", "--bind", address], "listening on")]
    try:
        for i in range(executors):
            folder = os.path.join(work, f"executor-{i}")
            os.mkdir(folder)
            roles.append(Role(binary, ["executor", "--scheduler", address, "--bind", "127.0.0.1:0",
                                       "--work-dir", folder], "registration succeed"))
    except CheckFailed:
        for role in roles:
            role.stop()
        raise
    return f"df://{address}", roles


def main():
    if len(sys.argv) not in (2, 3) or sys.argv[2:] not in ([], ["--on-cluster"]):
        print("usage: python tests/independent/check_example.py path/to/etl [--on-cluster]", file=sys.stderr)
        return 2
    binary = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="etl-check-example-") as work:
        shutil.copytree(os.path.join(REPO, "sql"), os.path.join(work, "sql"))
        shutil.copytree(os.path.join(REPO, "data"), os.path.join(work, "data"))
        roles = []
        try:
            if sys.argv[2:]:
                engine, roles = start_cluster(binary, work)
                os.environ["ETL_ENGINE"] = engine
                print(f"on a cluster at {engine}: a scheduler and {len(roles) - 1} executors")
            run_checks(binary, work)
            if roles:
                # ETL_ENGINE ignored would pass every check above on local runs.
                tasks = sum("Execute task" in line for role in roles[1:] for line in role.log)
                check(tasks > 0, "no executor ran a task: the jobs did not run on the cluster")
                print(f"ok  8 the executors ran {tasks} tasks")
        except CheckFailed as failure:
            print(f"FAIL {failure}")
            for role in roles:
                print(f"--- log of etl cluster {role.process.args[2]}:\n{''.join(role.log[-40:])}")
            return 1
        finally:
            for role in roles:
                role.stop()
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
