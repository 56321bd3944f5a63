"""Summarise per-session aggregates, with Spark.

The PySpark version of examples/stages/report.py.

Usage (the same file on a laptop and on EMR):
    spark-submit --master 'local[2]' report.py --in /tmp/sessions --out /tmp/report
    spark-submit s3://bucket/code/report.py --in s3://bucket/sessions/ --out s3://bucket/report/

    --in PATH     the output of sessions.py
    --out PATH    where the report goes; defaults to RESPAWN_OUTPUT

Writes one CSV file with a header, `rank,metric,user_session,value`: the number of
sessions, of events and of sessions with more than one user, the total revenue, the
average basket (rounded half-even to the cent), then the top 10 sessions by money spent
(ties broken by session id).
"""

import argparse
import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

TOP = 10


def parse_args(argv):
    p = argparse.ArgumentParser(prog="report.py", description=__doc__.splitlines()[0])
    p.add_argument("--in", dest="input", required=True)
    p.add_argument("--out", default=os.environ.get("RESPAWN_OUTPUT"))
    args = p.parse_args(argv)
    if not args.out:
        p.error("--out is required (or RESPAWN_OUTPUT)")
    return args


def main(argv):
    args = parse_args(argv)
    spark = SparkSession.builder.appName("report").getOrCreate()
    sessions = spark.read.option("header", True).csv(args.input).select(
        "user_session",
        F.col("distinct_users").cast("long").alias("distinct_users"),
        F.col("events").cast("long").alias("events"),
        F.col("money_spent").cast("decimal(18,2)").alias("money_spent"),
    )
    totals = sessions.agg(
        F.count(F.lit(1)).alias("sessions"),
        F.coalesce(F.sum("events"), F.lit(0)).alias("events"),
        F.count(F.when(F.col("distinct_users") > 1, True)).alias("shared_sessions"),
        F.coalesce(F.sum("money_spent"), F.lit(0)).cast("decimal(18,2)").alias("revenue"),
    )
    average = F.when(
        F.col("sessions") > 0, F.bround(F.col("revenue") / F.col("sessions"), 2)
    ).otherwise(F.lit(0))
    figures = [
        ("sessions", F.col("sessions")),
        ("events", F.col("events")),
        ("sessions_with_several_users", F.col("shared_sessions")),
        ("revenue", F.col("revenue")),
        ("average_basket", average.cast("decimal(18,2)")),
    ]
    metrics = None
    for name, value in figures:
        row = totals.select(
            F.lit(0).alias("rank"),
            F.lit(name).alias("metric"),
            F.lit("").alias("user_session"),
            value.cast("string").alias("value"),
        )
        metrics = row if metrics is None else metrics.unionByName(row)
    by_money = Window.orderBy(F.col("money_spent").desc(), F.col("user_session").asc())
    top = (
        sessions.withColumn("rank", F.row_number().over(by_money))
        .where(F.col("rank") <= TOP)
        .select(
            "rank",
            F.lit("top_session").alias("metric"),
            "user_session",
            F.col("money_spent").cast("string").alias("value"),
        )
    )
    report = metrics.unionByName(top).coalesce(1).orderBy("rank", "metric")
    report.write.mode("overwrite").option("header", True).csv(args.out)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
