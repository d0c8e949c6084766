#!/usr/bin/env python3
"""An independent check of what etl does on S3 and Glue: boto3 (signed requests, as AWS
clients make them) reads the Glue table and partitions our run registered, and pyarrow reads the
Parquet objects it wrote to S3, through the local endpoint the test command started
(AWS_ENDPOINT_URL).

Usage: check_aws.py path/to/etl

Checks, each printed as one line:
  1. the example job runs with S3 sources and targets and the Glue catalog;
  2. Glue holds what Athena needs: EXTERNAL_TABLE, classification, SerDe, InputFormat,
     OutputFormat, columns and types, the partition key apart, one partition per week;
  3. the objects are SSE-KMS encrypted as the job asked, and only the registered ones exist;
  4. pyarrow reads the registered partitions' files: the rows etl reports and queries;
  5. a rerun switches every partition to a new folder, takes the old out of readers' sight, and
     is a Glue table version of its own (data version 2) of the same schema version;
  6. the crawled CSV source is declared for LazySimpleSerDe (unquoted), with its delimiter,
     header skip and empty-as-NULL, and the types Athena reads;
  7. a crawled quoted CSV (empty numbers, ISO timestamps) is declared for OpenCSVSerDe with
     only the three keys it reads, every column it cannot read as typed declared string with
     etl's type in the column's parameters and the reason as its comment; a crawled JSON source
     maps the keys etl renamed (`mapping.order_id` = `Order ID`).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid

import boto3
import pyarrow.dataset as ds
import pyarrow.fs as pafs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KMS_KEY = "alias/etl-independent-check"


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def etl(binary, home, *args):
    result = subprocess.run([binary, *args, "--catalog", "glue"], env={**os.environ, "ETL_HOME": home},
                            capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"etl {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result.stdout


def upload(s3, bucket, folder, prefix):
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            s3.upload_file(path, bucket, f"{prefix}/{os.path.relpath(path, folder)}")


def job_file(work, raw, curated, database):
    text = open(os.path.join(REPO, "sql", "weekly_orders.toml")).read()
    text = text.replace('location = "../data/orders/"', f'location = "s3://{raw}/orders/"')
    text = text.replace('location = "../data/customers/"', f'location = "s3://{raw}/customers/"')
    text = text.replace('location = "../.etl/warehouse/weekly_revenue/"',
                        f'location = "s3://{curated}/weekly_revenue/"\nencryption = "aws:kms"\nkms_key_id = "{KMS_KEY}"')
    text = re.sub(r'table = "(raw|curated)\.', lambda m: f'table = "{database}_{m.group(1)}.', text)
    sql = open(os.path.join(REPO, "sql", "weekly_orders.sql")).read()
    sql = sql.replace("raw.orders", f"{database}_raw.orders").replace("raw.customers", f"{database}_raw.customers")
    os.makedirs(os.path.join(work, "sql"))
    open(os.path.join(work, "sql", "weekly_orders.toml"), "w").write(text)
    open(os.path.join(work, "sql", "weekly_orders.sql"), "w").write(sql)
    return os.path.join(work, "sql", "weekly_orders.toml")


def check_glue(glue, database, report):
    table = glue.get_table(DatabaseName=f"{database}_curated", Name="weekly_revenue")["Table"]
    storage = table["StorageDescriptor"]
    check(table["TableType"] == "EXTERNAL_TABLE", f"TableType {table['TableType']}")
    check(table["Parameters"]["classification"] == "parquet", f"parameters {table['Parameters']}")
    check(storage["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe", "SerDe")
    check(storage["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat", "InputFormat")
    check(storage["OutputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat", "OutputFormat")
    columns = [(c["Name"], c["Type"]) for c in storage["Columns"]]
    check(columns == [("segment", "string"), ("orders", "bigint"), ("customers", "bigint"), ("revenue", "decimal(14,2)"),
                      ("revenue_per_customer", "decimal(12,2)"), ("segment_rank", "bigint"), ("revenue_change", "decimal(14,2)")],
          f"columns {columns}")
    check([(k["Name"], k["Type"]) for k in table["PartitionKeys"]] == [("order_week", "date")], f"keys {table['PartitionKeys']}")
    partitions = glue.get_partitions(DatabaseName=f"{database}_curated", TableName="weekly_revenue")["Partitions"]
    check(len(partitions) == report["targets"][0]["partitions"], f"{len(partitions)} partitions registered")
    for partition in partitions:
        location = partition["StorageDescriptor"]["Location"]
        check(f"/order_week={partition['Values'][0]}/run-" in location, f"partition location {location}")
    return sorted(p["StorageDescriptor"]["Location"] for p in partitions)


LAZY_SIMPLE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
OPEN_CSV = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
OPENX_JSON = "org.openx.data.jsonserde.JsonSerDe"


def crawled_table(glue, database, name, library, serde_parameters):
    """The Glue table of a crawled source, checked to name `library` with exactly `serde_parameters`."""
    table = glue.get_table(DatabaseName=f"{database}_raw", Name=name)["Table"]
    serde = table["StorageDescriptor"]["SerdeInfo"]
    check(serde["SerializationLibrary"] == library, f"{name} SerDe {serde['SerializationLibrary']}")
    check(serde["Parameters"] == serde_parameters, f"{name} SerDe parameters {serde['Parameters']}")
    return table


def check_crawled_csv(glue, database):
    table = crawled_table(glue, database, "orders", LAZY_SIMPLE,
                          {"field.delim": ",", "serialization.format": ",", "serialization.null.format": ""})
    storage = table["StorageDescriptor"]
    parameters = table["Parameters"]
    check(parameters.get("classification") == "csv" and parameters.get("skip.header.line.count") == "1"
          and parameters.get("areColumnsQuoted") == "false", f"orders parameters {parameters}")
    check(storage["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat", f"orders InputFormat {storage['InputFormat']}")
    columns = [(c["Name"], c["Type"]) for c in storage["Columns"]]
    check(columns == [("order_id", "bigint"), ("customer_id", "bigint"), ("ordered_at", "timestamp"), ("status", "string"),
                      ("quantity", "bigint"), ("unit_price", "double"), ("discount", "double"), ("channel", "string")],
          f"orders columns {columns}")
    check(all("Parameters" not in c for c in storage["Columns"]), "orders columns carry etl.type though Athena reads them as etl does")


def check_quoted_csv_and_json(binary, home, s3, glue, raw, database):
    s3.put_object(Bucket=raw, Key="flights/flights.csv", Body=(
        "year,dep_delay,carrier,time_hour\n"
        '2013,2,"UA",2013-01-01T05:00:00Z\n'
        '2013,,"AA",2013-01-01T06:00:00Z\n').encode())
    etl(binary, home, "crawl", f"s3://{raw}/flights/", "--table", f"{database}_raw.flights")
    table = crawled_table(glue, database, "flights", OPEN_CSV, {"separatorChar": ",", "quoteChar": '"', "escapeChar": "\\"})
    storage = table["StorageDescriptor"]
    check(table["Parameters"].get("areColumnsQuoted") == "true", f"flights parameters {table['Parameters']}")
    declared = [(c["Name"], c["Type"], c.get("Parameters", {}).get("etl.type")) for c in storage["Columns"]]
    check(declared == [("year", "bigint", None), ("dep_delay", "string", "bigint"), ("carrier", "string", None),
                       ("time_hour", "string", "timestamp")], f"flights columns {declared}")
    comments = {c["Name"]: c.get("Comment", "") for c in storage["Columns"]}
    check(comments["dep_delay"].startswith("empty values in a numeric column fail OpenCSVSerDe"), f"comments {comments}")
    check("epoch milliseconds" in comments["time_hour"], f"comments {comments}")
    show = json.loads(etl(binary, home, "schema", "show", f"{database}_raw.flights", "--json"))
    check([(c["name"], c["type"]) for c in show["columns"]] ==
          [("year", "bigint"), ("dep_delay", "bigint"), ("carrier", "string"), ("time_hour", "timestamp")],
          f"etl's view of flights read back from Glue: {show['columns']}")
    check(show["athena_types"]["dep_delay"] == {"type": "string", "reason": comments["dep_delay"]}, f"{show['athena_types']}")

    s3.put_object(Bucket=raw, Key="events/events.json", Body=b'{"Order ID": 1, "a.b": true, "Id": 2}\n')
    etl(binary, home, "crawl", f"s3://{raw}/events/", "--table", f"{database}_raw.events")
    crawled_table(glue, database, "events", OPENX_JSON,
                  {"paths": "order_id,a_b,id", "mapping.order_id": "Order ID", "mapping.a_b": "a.b"})


def objects(s3, bucket):
    """The keys readers list: none in a folder named with `_` or `.` (journals, the manifests of
    data versions, replaced versions' files kept for rollback)."""
    keys = (o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    return sorted(k for k in keys if not any(part.startswith(("_", ".")) for part in k.split("/")))


def read_partitions(locations):
    filesystem = pafs.S3FileSystem(endpoint_override=os.environ["AWS_ENDPOINT_URL"], region="us-east-1",
                                   access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                                   scheme="http")
    rows = 0
    for location in locations:
        rows += ds.dataset(location.removeprefix("s3://"), filesystem=filesystem, format="parquet").count_rows()
    return rows


def main():
    if len(sys.argv) != 2:
        fail("usage: check_aws.py path/to/etl")
    if not os.environ.get("AWS_ENDPOINT_URL"):
        fail("AWS_ENDPOINT_URL is not set: the local AWS endpoint did not start")
    binary = os.path.abspath(sys.argv[1])
    s3, glue = boto3.client("s3"), boto3.client("glue")
    suffix = uuid.uuid4().hex[:8]
    raw, curated, database = f"raw-{suffix}", f"curated-{suffix}", f"check{suffix}"
    s3.create_bucket(Bucket=raw)
    s3.create_bucket(Bucket=curated)
    upload(s3, raw, os.path.join(REPO, "data", "orders"), "orders")
    upload(s3, raw, os.path.join(REPO, "data", "customers"), "customers")
    with tempfile.TemporaryDirectory() as work:
        job = job_file(work, raw, curated, database)
        home = os.path.join(work, "home")
        report = json.loads(etl(binary, home, "run", job, "--logical-date", "2026-11-30", "--json"))
        check(report["status"] == "succeeded", f"run failed: {report}")
        print(f"ok  1 run {report['run_id']} on S3 and Glue: {report['targets'][0]['rows']} rows")

        locations = check_glue(glue, database, report)
        print(f"ok  2 Glue holds an Athena-ready table with {len(locations)} partitions")

        keys = objects(s3, curated)
        check(all(any(f"s3://{curated}/{key}".startswith(l + "/") for l in locations) for key in keys), f"objects {keys}")
        for key in keys:
            head = s3.head_object(Bucket=curated, Key=key)
            check(head.get("ServerSideEncryption") == "aws:kms" and head.get("SSEKMSKeyId") == KMS_KEY, f"{key}: {head.get('ServerSideEncryption')}")
        print(f"ok  3 {len(keys)} objects, all SSE-KMS with the job's key, none outside the registered partitions")

        rows = read_partitions(locations)
        check(rows == report["targets"][0]["rows"], f"pyarrow reads {rows} rows, the report says {report['targets'][0]['rows']}")
        counted = json.loads(etl(binary, home, "sql", f"SELECT count(*) AS n FROM {database}_curated.weekly_revenue", "--format", "json"))
        check(counted[0]["n"] == rows, f"etl sql counts {counted[0]['n']}")
        print(f"ok  4 pyarrow reads the {rows} rows from the registered partitions; etl sql agrees")

        etl(binary, home, "run", job, "--logical-date", "2026-11-30", "--json")
        again = check_glue(glue, database, report)
        check(set(again).isdisjoint(locations), "the rerun did not switch partitions to new folders")
        keys_again = objects(s3, curated)
        check(set(keys_again).isdisjoint(keys) and len(keys_again) == len(keys), f"old objects left: {keys_again}")
        check(read_partitions(again) == rows, "the rerun changed the rows")
        versions = glue.get_table_versions(DatabaseName=f"{database}_curated", TableName="weekly_revenue")["TableVersions"]
        parameters = [v["Table"].get("Parameters", {}) for v in versions]
        schema_versions = {p.get("etl.version") for p in parameters}
        data_versions = sorted({json.loads(p["etl.data"])["version"] for p in parameters if "etl.data" in p})
        check(schema_versions == {"1"}, f"schema versions {schema_versions} after a rerun with the same schema")
        check(data_versions == [1, 2], f"every publication is a Glue table version: data versions {data_versions}")
        print("ok  5 a rerun switched every partition to a new folder, took the old objects out of readers' sight, "
              "made a second Glue table version of the same schema version")

        check_crawled_csv(glue, database)
        print("ok  6 the crawled CSV source is a LazySimpleSerDe table: delimiter, header skip, empty as NULL, typed columns")

        check_quoted_csv_and_json(binary, home, s3, glue, raw, database)
        print("ok  7 a quoted CSV is OpenCSVSerDe with what it cannot read declared string (etl's type and the reason "
              "beside); renamed JSON keys are mapped")


if __name__ == "__main__":
    main()
