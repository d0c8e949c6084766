"""The benchmark's input data, made once under benches/data/ and reused while present.

A folder is complete when the marker file beside it (FOLDER.complete, written last) exists, so
an interrupted generation is redone rather than reused half-written. The marker is not inside
the folder, where an engine would read it as data.
"""
import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass

NDJSON_FILES = 2000
NDJSON_ROWS_PER_FILE = 200
NDJSON_ROWS = NDJSON_FILES * NDJSON_ROWS_PER_FILE


@dataclass
class Tpch:
    lineitem_csv: str       # each a folder holding one file of the table
    orders_csv: str
    lineitem_parquet: str
    orders_parquet: str


def _complete(folder):
    return os.path.exists(folder + ".complete")


def _fresh(folder):
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)


def _mark_complete(folder):
    open(folder + ".complete", "w").close()


def ensure_tpch(data_root, sf):
    """lineitem and orders at scale factor `sf`, as CSV (header, comma) and as Parquet, by
    tpchgen-cli. `--parts 1` puts each table in a folder of its own: engines read folders."""
    root = os.path.join(data_root, f"tpch-sf{sf:g}")
    if not _complete(root):
        _fresh(root)
        tpchgen = os.path.join(os.path.dirname(sys.executable), "tpchgen-cli")
        for fmt in ("csv", "parquet"):
            print(f"generating TPC-H SF{sf:g} lineitem and orders as {fmt} in {root}", flush=True)
            subprocess.run([tpchgen, fmt, "--scale-factor", f"{sf:g}", "--tables", "lineitem,orders",
                            "--parts", "1", "--output-dir", os.path.join(root, fmt), "--quiet"], check=True)
        _mark_complete(root)
    return Tpch(*(os.path.join(root, fmt, table)
                  for fmt in ("csv", "parquet") for table in ("lineitem", "orders")))


def _event(rng, n, file_index):
    record = {
        "id": n,
        "kind": rng.choice(["view", "click", "buy"]),
        # Integers in the first half of the files, floats after: a reader that infers from the
        # first files alone gets bigint.
        "amount": rng.randint(1, 500) if file_index < NDJSON_FILES // 2 else round(rng.uniform(1, 500), 2),
        "customer": {"id": rng.randint(1, 10_000), "country": rng.choice(["DE", "FR", "US", "JP"])},
    }
    if n % 7 == 0:  # the optional field: in one record of seven
        record["coupon"] = f"C{n % 1000:03d}"
    return record


def ensure_ndjson(data_root):
    """2,000 NDJSON files of 200 records: an optional field, an int field that turns into
    floats in the later files, and a nested object."""
    root = os.path.join(data_root, "ndjson-events")
    if not _complete(root):
        print(f"generating {NDJSON_FILES} NDJSON files in {root}", flush=True)
        _fresh(root)
        rng = random.Random(42)
        for file_index in range(NDJSON_FILES):
            with open(os.path.join(root, f"events-{file_index:04d}.json"), "w") as out:
                for row in range(NDJSON_ROWS_PER_FILE):
                    n = file_index * NDJSON_ROWS_PER_FILE + row
                    out.write(json.dumps(_event(rng, n, file_index)) + "\n")
        _mark_complete(root)
    return root
