"""Polars' side of the workloads: `python peer_polars.py WORKLOAD ARGS...` (see harness.py).
Lazy frames throughout, so Polars plans each workload whole (streaming where it can)."""
import glob
import sys
from datetime import date

import polars as pl

from common import emit


def w1(csv_dir, out_dir):
    # try_parse_dates: the dates are inferred as dates, as the other engines infer them.
    (pl.scan_csv(f"{csv_dir}/*.csv", try_parse_dates=True)
     .sink_parquet(f"{out_dir}/lineitem.parquet", compression="snappy"))


def w2(lineitem_dir):
    price, discount, tax = pl.col("l_extendedprice"), pl.col("l_discount"), pl.col("l_tax")
    answer = (pl.scan_parquet(f"{lineitem_dir}/*.parquet")
              .filter(pl.col("l_shipdate") <= date(1998, 9, 2))  # 1998-12-01 minus 90 days
              .group_by("l_returnflag", "l_linestatus")
              .agg(sum_qty=pl.col("l_quantity").sum(),
                   sum_base_price=price.sum(),
                   sum_disc_price=(price * (1 - discount)).sum(),
                   sum_charge=(price * (1 - discount) * (1 + tax)).sum(),
                   avg_qty=pl.col("l_quantity").mean(),
                   avg_price=price.mean(),
                   avg_disc=discount.mean(),
                   count_order=pl.len())
              .sort("l_returnflag", "l_linestatus")
              .collect())
    emit(answer.rows())


def w3(lineitem_dir, orders_dir, out_dir):
    orders = (pl.scan_parquet(f"{orders_dir}/*.parquet")
              .filter(pl.col("o_orderdate").is_between(date(1995, 1, 1), date(1995, 12, 31))))
    weekly = (pl.scan_parquet(f"{lineitem_dir}/*.parquet")
              .join(orders, left_on="l_orderkey", right_on="o_orderkey")
              .group_by(pl.col("o_orderdate").dt.truncate("1w").alias("order_week"), "l_returnflag")
              .agg(revenue=(pl.col("l_extendedprice") * (1 - pl.col("l_discount"))).sum(),
                   line_items=pl.len())
              .collect())
    weekly.write_parquet(out_dir, compression="snappy", partition_by="l_returnflag")


def w4(json_dir, mode):
    if mode == "unify":
        # One scan per file, each with its own schema, concatenated with their columns
        # unified (missing ones null, int widened to float).
        files = sorted(glob.glob(f"{json_dir}/*.json"))
        frame = pl.concat([pl.scan_ndjson(f) for f in files], how="diagonal_relaxed")
    else:
        frame = pl.scan_ndjson(f"{json_dir}/*.json")
    columns = {name: str(kind) for name, kind in frame.collect_schema().items()}
    emit({"rows": frame.select(pl.len()).collect().item(), "columns": columns})


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
