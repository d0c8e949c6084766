"""DuckDB's side of the workloads: `python peer_duckdb.py WORKLOAD ARGS...` (see harness.py)."""
import sys

import duckdb

from common import Q1, WEEKLY, emit

con = duckdb.connect()


def w1(csv_dir, out_dir):
    con.execute(f"COPY (SELECT * FROM read_csv_auto('{csv_dir}/*.csv')) "
                f"TO '{out_dir}/lineitem.parquet' (FORMAT parquet, COMPRESSION snappy)")


def w2(lineitem_dir):
    emit(con.sql(Q1.format(lineitem=f"read_parquet('{lineitem_dir}/*.parquet')")).fetchall())


def w3(lineitem_dir, orders_dir, out_dir):
    query = WEEKLY.format(lineitem=f"read_parquet('{lineitem_dir}/*.parquet')",
                          orders=f"read_parquet('{orders_dir}/*.parquet')")
    con.execute(f"COPY ({query}) TO '{out_dir}' "
                "(FORMAT parquet, PARTITION_BY (l_returnflag), COMPRESSION snappy)")


def w4(json_dir, mode):
    # By default DuckDB infers from a sample of the files; union_by_name reads every file's
    # schema and unifies them.
    options = ", union_by_name = true" if mode == "unify" else ""
    source = f"read_json_auto('{json_dir}/*.json'{options})"
    [(rows,)] = con.sql(f"SELECT count(*) FROM {source}").fetchall()
    columns = {name: kind for name, kind, *_ in con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    emit({"rows": rows, "columns": columns})


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
