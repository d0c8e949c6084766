"""Spark's (PySpark, local mode) side of the workloads: `python peer_spark.py WORKLOAD ARGS...`
(see harness.py). Spark's defaults, but for the web UI and the console progress bar, which a
batch job does not need."""
import sys

from pyspark.sql import SparkSession

from common import Q1, WEEKLY, emit


def session():
    spark = (SparkSession.builder.master("local[*]").appName("etl-bench")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def w1(csv_dir, out_dir):
    (spark.read.csv(csv_dir, header=True, inferSchema=True)
     .coalesce(1).write.mode("overwrite").option("compression", "snappy").parquet(out_dir))


def w2(lineitem_dir):
    spark.read.parquet(lineitem_dir).createOrReplaceTempView("lineitem")
    emit([list(row) for row in spark.sql(Q1.format(lineitem="lineitem")).collect()])


def w3(lineitem_dir, orders_dir, out_dir):
    spark.read.parquet(lineitem_dir).createOrReplaceTempView("lineitem")
    spark.read.parquet(orders_dir).createOrReplaceTempView("orders")
    (spark.sql(WEEKLY.format(lineitem="lineitem", orders="orders"))
     .write.mode("overwrite").partitionBy("l_returnflag").option("compression", "snappy").parquet(out_dir))


def w4(json_dir, mode):
    # Spark reads every record of every file to infer (samplingRatio 1.0): nothing to unify.
    frame = spark.read.json(json_dir)
    columns = {field.name: field.dataType.simpleString() for field in frame.schema.fields}
    emit({"rows": frame.count(), "columns": columns})


if __name__ == "__main__":
    spark = session()
    globals()[sys.argv[1]](*sys.argv[2:])
    spark.stop()
