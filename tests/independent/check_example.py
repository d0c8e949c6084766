#!/usr/bin/env python3
"""An independent check of the example job's output: readers that are not our code (DuckDB and
pyarrow) read the Parquet that `etl run sql/weekly_orders.toml` publishes, and DuckDB computes the
same answer from the raw CSV and JSON on its own. If our reader and our writer agreed on
something wrong, this is where it shows.

Usage: check_example.py path/to/etl

It copies sql/ and data/ to a temporary folder and runs the job there, so the repository is not
touched. Checks, each printed as one line:
  1. the run succeeds and reports what it wrote;
  2. pyarrow and DuckDB read the same rows from the output folder (Hive partitioning);
  3. the rows equal DuckDB's own computation from the raw files;
  4. the files are what Athena wants: ZSTD, statistics, page indexes, no partition column
     inside, decimal/int64/string types;
  5. a rerun of the same logical date replaces its output (no duplicates, nothing left over);
  6. the catalog, through `etl sql`, counts the same rows.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from decimal import Decimal

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOGICAL_DATE = "2026-11-30"
WEEK_START = "2026-11-30"  # the Monday of the logical date's week
WEEKS = 4


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def etl(binary, home, *args):
    result = subprocess.run([binary, *args], env={**os.environ, "ETL_HOME": home}, capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"etl {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result.stdout


def run_job(binary, work, home):
    report = json.loads(etl(binary, home, "run", os.path.join(work, "sql", "weekly_orders.toml"),
                            "--logical-date", LOGICAL_DATE, "--json"))
    check(report["status"] == "succeeded", f"run failed: {report}")
    return report


def read_with_pyarrow(output):
    table = ds.dataset(output, format="parquet", partitioning="hive").to_table()
    rows = table.to_pylist()
    for row in rows:
        row["order_week"] = str(row["order_week"])
    return sorted(rows, key=lambda r: (r["order_week"], r["segment"]))


def read_with_duckdb(output):
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{output}/**/*.parquet', hive_partitioning = true)")
    columns = relation.columns
    rows = [dict(zip(columns, values)) for values in relation.fetchall()]
    for row in rows:
        row["order_week"] = str(row["order_week"])
    return sorted(rows, key=lambda r: (r["order_week"], r["segment"]))


def expected_rows(work):
    """The job's logic, written again in DuckDB over the raw files."""
    orders = os.path.join(work, "data", "orders", "*", "*.csv")
    customers = os.path.join(work, "data", "customers", "customers.json")
    sql = f"""
    WITH orders AS (
        SELECT "Customer ID" AS customer_id, "Status" AS status, "Channel" AS channel,
               "Quantity" * "Unit Price" * (1 - coalesce(TRY_CAST("Discount" AS DOUBLE), 0)) AS net_amount,
               CAST(order_date AS DATE) AS order_date
        FROM read_csv('{orders}', hive_partitioning = true, header = true)
    ),
    windowed AS (
        SELECT customer_id, net_amount, CAST(date_trunc('week', order_date) AS DATE) AS order_week
        FROM orders
        WHERE order_date >= DATE '{WEEK_START}' - INTERVAL {7 * WEEKS} DAY
          AND order_date < DATE '{WEEK_START}' AND status = 'completed'
    ),
    per_segment AS (
        SELECT w.order_week, c.segment, count(*) AS orders, count(DISTINCT w.customer_id) AS customers,
               sum(w.net_amount) AS revenue
        FROM windowed w JOIN read_json('{customers}', format = 'newline_delimited') c
          ON c.customer_id = w.customer_id
        GROUP BY ALL
    )
    SELECT segment, orders, customers,
           CAST(round(revenue, 2) AS DECIMAL(14, 2)) AS revenue,
           CAST(round(revenue / customers, 2) AS DECIMAL(12, 2)) AS revenue_per_customer,
           rank() OVER (PARTITION BY order_week ORDER BY revenue DESC) AS segment_rank,
           CAST(round(revenue - lag(revenue) OVER (PARTITION BY segment ORDER BY order_week), 2) AS DECIMAL(14, 2))
               AS revenue_change,
           CAST(order_week AS VARCHAR) AS order_week
    FROM per_segment
    """
    relation = duckdb.sql(sql)
    rows = [dict(zip(relation.columns, values)) for values in relation.fetchall()]
    return sorted(rows, key=lambda r: (r["order_week"], r["segment"]))


def same_rows(ours, theirs, what):
    check(len(ours) == len(theirs), f"{what}: {len(ours)} rows against {len(theirs)}")
    for mine, other in zip(ours, theirs):
        for column, value in other.items():
            mine_value = mine[column]
            if isinstance(value, (float, Decimal)) or isinstance(mine_value, (float, Decimal)):
                equal = (mine_value is None and value is None) or (
                    mine_value is not None and value is not None and Decimal(str(mine_value)) == Decimal(str(value)))
            else:
                equal = mine_value == value
            check(equal, f"{what}: {column} differs for week {other['order_week']} segment {other['segment']}: "
                         f"ours {mine_value!r}, theirs {value!r}")


def parquet_files(output):
    files = []
    for root, dirs, names in os.walk(output):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        files += [os.path.join(root, n) for n in names if n.endswith(".parquet")]
    return sorted(files)


def check_files(output):
    files = parquet_files(output)
    check(files, "no Parquet files")
    for path in files:
        metadata = pq.ParquetFile(path).metadata
        schema = pq.ParquetFile(path).schema_arrow
        check("order_week" not in schema.names, f"{path} holds the partition column")
        check(str(schema.field("revenue").type) == "decimal128(14, 2)", f"revenue is {schema.field('revenue').type}")
        for name in ("orders", "customers", "segment_rank"):
            check(str(schema.field(name).type) == "int64", f"{name} is {schema.field(name).type}")
        check(str(schema.field("segment").type) == "string", f"segment is {schema.field('segment').type}")
        for group in range(metadata.num_row_groups):
            for column in range(metadata.num_columns):
                chunk = metadata.row_group(group).column(column)
                check(chunk.compression == "ZSTD", f"{path}: {chunk.path_in_schema} is {chunk.compression}")
                check(chunk.is_stats_set and chunk.statistics.has_min_max or chunk.statistics.null_count == metadata.row_group(group).num_rows,
                      f"{path}: {chunk.path_in_schema} has no statistics")
                check(chunk.has_column_index and chunk.has_offset_index, f"{path}: {chunk.path_in_schema} has no page index")
    return files


def main():
    if len(sys.argv) != 2:
        fail("usage: check_example.py path/to/etl")
    binary = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as work:
        shutil.copytree(os.path.join(REPO, "sql"), os.path.join(work, "sql"))
        shutil.copytree(os.path.join(REPO, "data"), os.path.join(work, "data"))
        home = os.path.join(work, "home")
        output = os.path.join(work, ".etl", "warehouse", "weekly_revenue")

        report = run_job(binary, work, home)
        target = report["targets"][0]
        print(f"ok  1 run {report['run_id']}: {target['rows']} rows in {target['files']} files, {target['partitions']} partitions")

        arrow_rows, duck_rows = read_with_pyarrow(output), read_with_duckdb(output)
        same_rows(arrow_rows, duck_rows, "pyarrow against DuckDB")
        check(len(arrow_rows) == target["rows"], f"readers see {len(arrow_rows)} rows, the report says {target['rows']}")
        print(f"ok  2 pyarrow and DuckDB read the same {len(arrow_rows)} rows")

        same_rows(duck_rows, expected_rows(work), "our output against DuckDB's computation from the raw files")
        print("ok  3 the rows equal DuckDB's own computation from the raw CSV and JSON")

        files = check_files(output)
        print(f"ok  4 {len(files)} files: ZSTD, statistics and page indexes, Athena types, no partition column inside")

        run_job(binary, work, home)
        check(read_with_pyarrow(output) == arrow_rows, "a rerun of the same logical date changed the rows")
        again = parquet_files(output)
        check(len(again) == len(files) and set(again).isdisjoint(files), f"after the rerun: {again}")
        check(not os.path.exists(os.path.join(output, "_etl_staging")), "a staging folder is left behind")
        print("ok  5 a rerun replaced every partition's files: same rows, no duplicates, nothing left over")

        counted = json.loads(etl(binary, home, "sql", "SELECT count(*) AS n FROM curated.weekly_revenue", "--format", "json"))
        check(counted[0]["n"] == len(arrow_rows), f"the catalog counts {counted[0]['n']} rows")
        print("ok  6 the catalog counts the same rows")


if __name__ == "__main__":
    main()
