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
  5. a rerun switches every partition to a new folder, deletes the old, keeps one version.
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


def objects(s3, bucket):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


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
        check(len(versions) == 1, f"{len(versions)} table versions after a rerun with the same schema")
        print("ok  5 a rerun switched every partition to a new folder, deleted the old objects, kept one version")


if __name__ == "__main__":
    main()
