#!/usr/bin/env python3
"""Independent check of the Delta Lake tables etl writes (`table_format = "delta"`).

The `deltalake` Python package (pinned in requirements.txt; its own reader of the Delta
protocol, through its DataFusion engine) reads every version of every table etl writes, and
its rows must equal what `etl sql` reads of the same version (`version_of`). Locally, then on
S3 with the Glue catalog when the test command's local endpoint is up (AWS_ENDPOINT_URL).

Usage: python tests/independent/check_delta.py path/to/etl

The scenario: a partitioned sales table through append (a rerun replacing its own files, a
second batch added), overwrite_partitions and overwrite; a customers table through MERGE
(updates and inserts, then deletes); a rollback; `etl compact`; `etl gc`. After each step
every version etl still keeps is compared. Also checked: the log's operations, its partition
columns, that Glue holds the table with table_type = DELTA at its location.

DuckDB's `delta` extension is not used: DuckDB downloads extensions from its own site, which
this machine cannot reach (only the package registries), and no pinned wheel carries it.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import deltalake
import pyarrow as pa

ETL = os.path.abspath(sys.argv[1])
SALES = "id,day,amount,batch\n1,a,10,1\n2,a,20,1\n3,b,30,1\n4,b,40,1\n5,c,50,2\n6,c,60,2\n7,b,70,3\n"
CUSTOMERS = "id,name,tier,batch\n1,ann,gold,1\n2,bob,silver,1\n3,cy,bronze,1\n2,bob,gold,2\n4,dee,silver,2\n3,cy,x,3\n"


def check(condition, message):
    if not condition:
        sys.exit(f"FAILED: {message}")


class Place:
    """Where the tables are: a local folder with the embedded catalog, or a bucket with Glue."""

    def __init__(self, root, catalog, database, storage_options=None):
        self.root = root
        self.database = database
        self.catalog = catalog
        self.storage_options = storage_options or {}
        self.home = tempfile.mkdtemp(prefix="etl-home-")
        self.work = tempfile.mkdtemp(prefix="etl-delta-")
        os.makedirs(os.path.join(self.work, "in"))

    def etl(self, *args, ok=True):
        command = [ETL, *args, "--catalog", self.catalog]
        result = subprocess.run(command, cwd=self.work, env={**os.environ, "ETL_HOME": self.home},
                                capture_output=True, text=True)
        if ok and result.returncode != 0:
            sys.exit(f"FAILED: {' '.join(command)} exited {result.returncode}:\n{result.stderr}")
        return result

    def json(self, *args):
        return json.loads(self.etl(*args, "--json").stdout)

    def job(self, name, table, source, query, location, options):
        with open(os.path.join(self.work, "in", f"{name}.csv"), "w") as f:
            f.write(source)
        text = (f'name = "{name}"\n[params]\nbatch = 1\n[[source]]\ntable = "raw.{name}"\n'
                f'location = "in/{name}.csv"\nformat = "csv"\n[[target]]\ntable = "{table}"\n'
                f'query = "{query}"\nlocation = "{location}"\ntable_format = "delta"\n{options}\n')
        with open(os.path.join(self.work, f"{name}.toml"), "w") as f:
            f.write(text)

    def run(self, name, batch, date="2026-11-30"):
        report = self.json("run", f"{name}.toml", "--param", f"batch={batch}", "--logical-date", date)
        check(report["status"] == "succeeded", f"run of {name}: {report}")

    def delta_rows(self, location, version, columns):
        table = deltalake.DeltaTable(location, version=version, storage_options=self.storage_options)
        batches = deltalake.QueryBuilder().register("t", table).execute(f"SELECT {', '.join(columns)} FROM t").read_all()
        return sorted(tuple(row[c] for c in columns) for row in pa.table(batches).to_pylist())

    def etl_rows(self, table, version, columns):
        sql = f"SELECT {', '.join(columns)} FROM version_of('{table}', {version})"
        rows = json.loads(self.etl("sql", sql, "--format", "json").stdout)
        return sorted(tuple(row[c] for c in columns) for row in rows)

    def compare(self, table, location, columns, step):
        """Every version etl keeps the files of reads the same through the log and through etl."""
        history = self.json("table", "history", table)
        compared = 0
        for version in history["versions"]:
            if not version["restorable"]:
                continue
            ours, theirs = version["version"], version["delta_version"]
            expected = self.etl_rows(table, ours, columns)
            seen = self.delta_rows(location, theirs, columns)
            check(seen == expected, f"{step}: {table} v{ours} (Delta {theirs}): deltalake {seen}, etl {expected}")
            compared += 1
        check(compared > 0, f"{step}: {table} has no version whose files are kept")
        latest = deltalake.DeltaTable(location, storage_options=self.storage_options)
        check(latest.version() == history["versions"][-1]["delta_version"],
              f"{step}: the log's latest version is the one etl published last")
        print(f"ok: {step}: {table}, {compared} versions equal through deltalake and etl")
        return latest


def scenario(place):
    sales_table, customers_table = f"{place.database}.sales", f"{place.database}.customers"
    sales = f"{place.root}/sales"
    query = "SELECT id, day, amount FROM raw.sales WHERE batch = $batch"
    columns = ["id", "day", "amount"]
    place.job("sales", sales_table, SALES, query, sales, 'partition_by = ["day"]\nmode = "append"')
    place.run("sales", 1)
    table = place.compare(sales_table, sales, columns, "create")
    check(table.metadata().partition_columns == ["day"], f"partition columns {table.metadata().partition_columns}")
    place.run("sales", 1)
    place.compare(sales_table, sales, columns, "rerun of the same work")
    place.run("sales", 2)
    place.compare(sales_table, sales, columns, "append")
    place.job("sales", sales_table, SALES, query, sales, 'partition_by = ["day"]\nmode = "overwrite_partitions"')
    place.run("sales", 3, "2026-12-01")
    place.compare(sales_table, sales, columns, "overwrite_partitions")
    place.json("rollback", sales_table, "--to", "2")
    place.compare(sales_table, sales, columns, "rollback")
    place.json("compact", sales_table)
    place.compare(sales_table, sales, columns, "compact")
    place.json("gc", sales_table)
    table = place.compare(sales_table, sales, columns, "gc")
    operations = [entry["operation"] for entry in table.history()]
    check(operations[-1] == "CREATE TABLE" and "RESTORE" in operations and "WRITE" in operations,
          f"the log's operations: {operations}")
    place.job("sales", sales_table, SALES, query, sales, 'partition_by = ["day"]\nmode = "overwrite"')
    place.run("sales", 2, "2026-12-02")
    place.compare(sales_table, sales, columns, "overwrite")

    customers = f"{place.root}/customers"
    query = "SELECT id, name, tier FROM raw.customers WHERE batch = $batch"
    columns = ["id", "name", "tier"]
    merge = 'mode = "merge"\nmerge_on = ["id"]'
    place.job("customers", customers_table, CUSTOMERS, query, customers, merge)
    place.run("customers", 1)
    place.run("customers", 2)
    table = place.compare(customers_table, customers, columns, "merge")
    check(table.history(1)[0]["operation"] == "MERGE", "the last commit is a MERGE")
    rows = place.delta_rows(customers, table.version(), ["id", "tier"])
    check(rows == [(1, "gold"), (2, "gold"), (3, "bronze"), (4, "silver")], f"after the merge: {rows}")
    place.job("customers", customers_table, CUSTOMERS, query, customers,
              merge + '\nwhen_matched = "delete"\nwhen_not_matched = "ignore"')
    place.run("customers", 3)
    place.compare(customers_table, customers, columns, "merge deleting")
    rows = place.delta_rows(customers, None, ["id"])
    check(rows == [(1,), (2,), (4,)], f"after the deleting merge: {rows}")


def main():
    local = tempfile.mkdtemp(prefix="etl-delta-tables-")
    try:
        scenario(Place(local, "local", "mart"))
    finally:
        shutil.rmtree(local, ignore_errors=True)

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        print("NOT RUN: S3 and Glue (no AWS_ENDPOINT_URL; scripts/test starts a local endpoint)")
        return
    import boto3

    bucket = f"delta-check-{os.getpid()}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    options = {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": os.environ["AWS_REGION"],
               "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
               "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"]}
    database = f"delta_check_{os.getpid()}"
    place = Place(f"s3://{bucket}", "glue", database, options)
    scenario(place)
    glue = boto3.client("glue", endpoint_url=endpoint)
    for name in ["sales", "customers"]:
        table = glue.get_table(DatabaseName=database, Name=name)["Table"]
        check(table["Parameters"].get("table_type") == "DELTA", f"Glue's {database}.{name}: {table['Parameters']}")
        location = table["StorageDescriptor"]["Location"]
        check(location == f"s3://{bucket}/{name}", f"Glue's {database}.{name} is at {location}")
    print("ok: on S3, Glue holds both tables with table_type = DELTA at their log's location")


if __name__ == "__main__":
    main()
    print("all Delta checks passed")
