"""DataFusion's (Python package) side of the workloads: `python peer_datafusion.py WORKLOAD
ARGS...` (see harness.py)."""
import sys

import pyarrow as pa
from datafusion import DataFrameWriteOptions, SessionContext

from common import Q1, WEEKLY, emit

# The schema of the NDJSON files benches/datagen.py writes, for when inference cannot unify them.
EVENTS = pa.schema([
    ("id", pa.int64()),
    ("kind", pa.string()),
    ("amount", pa.float64()),
    ("customer", pa.struct([("id", pa.int64()), ("country", pa.string())])),
    ("coupon", pa.string()),
])

ctx = SessionContext()


def w1(csv_dir, out_dir):
    (ctx.read_csv(csv_dir)
     .write_parquet(f"{out_dir}/lineitem.parquet", compression="snappy",
                    write_options=DataFrameWriteOptions(single_file_output=True)))


def w2(lineitem_dir):
    ctx.register_parquet("lineitem", lineitem_dir)
    emit([list(row.values()) for row in ctx.sql(Q1.format(lineitem="lineitem")).to_pylist()])


def w3(lineitem_dir, orders_dir, out_dir):
    ctx.register_parquet("lineitem", lineitem_dir)
    ctx.register_parquet("orders", orders_dir)
    (ctx.sql(WEEKLY.format(lineitem="lineitem", orders="orders"))
     .write_parquet(out_dir, compression="snappy",
                    write_options=DataFrameWriteOptions(partition_by=["l_returnflag"])))


def w4(json_dir, mode):
    frame = ctx.read_json(json_dir, schema=EVENTS if mode == "unify" else None)
    columns = {field.name: str(field.type) for field in frame.schema()}
    emit({"rows": frame.count(), "columns": columns})


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
