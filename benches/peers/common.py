"""What every peer script shares: the SQL of the workloads, the NDJSON schema, how answers are
printed. The harness imports it too, to compute DuckDB's reference answers."""
import decimal
import json

# TPC-H Q1; {lineitem} is the engine's name for the table.
Q1 = """
SELECT l_returnflag, l_linestatus,
       sum(l_quantity) AS sum_qty,
       sum(l_extendedprice) AS sum_base_price,
       sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
       sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
       avg(l_quantity) AS avg_qty,
       avg(l_extendedprice) AS avg_price,
       avg(l_discount) AS avg_disc,
       count(*) AS count_order
FROM {lineitem}
WHERE l_shipdate <= DATE '1998-12-01' - INTERVAL '90' DAY
GROUP BY l_returnflag, l_linestatus
ORDER BY l_returnflag, l_linestatus
"""

# W3, the weekly job: revenue and line items per week of order date (weeks start on Monday)
# and return flag, over the orders of 1995.
WEEKLY = """
SELECT CAST(date_trunc('week', o_orderdate) AS DATE) AS order_week,
       l_returnflag,
       sum(l_extendedprice * (1 - l_discount)) AS revenue,
       count(*) AS line_items
FROM {lineitem} JOIN {orders} ON l_orderkey = o_orderkey
WHERE o_orderdate >= DATE '1995-01-01' AND o_orderdate < DATE '1996-01-01'
GROUP BY 1, 2
"""


def emit(answer):
    """Prints the answer as one JSON line (the last line of stdout is what the harness reads).
    Decimals become floats: the harness compares with a tolerance."""
    print(json.dumps(answer, default=lambda v: float(v) if isinstance(v, decimal.Decimal) else str(v)))
