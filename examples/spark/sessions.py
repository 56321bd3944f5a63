"""Aggregate events per session, with Spark.

The PySpark version of examples/stages/sessions.py: per user_session, the last event
time, the number of distinct users, the number of events and the money spent.

Usage (the same file on a laptop and on EMR):
    spark-submit --master 'local[2]' sessions.py --in /tmp/purchases --out /tmp/sessions
    spark-submit s3://bucket/code/sessions.py --in hdfs:///t/p --out s3://bucket/sessions/

    --in PATH     events (CSV with a header: event_time, user_id, price, user_session)
    --out PATH    where the table goes; defaults to RESPAWN_OUTPUT

Writes CSV with a header: user_session,last_event_time,distinct_users,events,money_spent
(money as an exact decimal with two digits), in session order.
"""

import argparse
import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def parse_args(argv):
    p = argparse.ArgumentParser(prog="sessions.py", description=__doc__.splitlines()[0])
    p.add_argument("--in", dest="input", required=True)
    p.add_argument("--out", default=os.environ.get("RESPAWN_OUTPUT"))
    args = p.parse_args(argv)
    if not args.out:
        p.error("--out is required (or RESPAWN_OUTPUT)")
    return args


def main(argv):
    args = parse_args(argv)
    spark = SparkSession.builder.appName("sessions").getOrCreate()
    events = spark.read.option("header", True).csv(args.input)
    sessions = (
        events.groupBy("user_session")
        .agg(
            # The times are "yyyy-MM-dd HH:mm:ss UTC": their order is their text's.
            F.max("event_time").alias("last_event_time"),
            F.countDistinct("user_id").alias("distinct_users"),
            F.count(F.lit(1)).alias("events"),
            F.sum(F.col("price").cast("decimal(18,2)")).alias("money_spent"),
        )
        .orderBy("user_session")
    )
    sessions.write.mode("overwrite").option("header", True).csv(args.out)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
