"""Keep only the purchase events, with Spark.

The PySpark version of examples/stages/filter_purchases.py.

Usage (the same file on a laptop and on EMR):
    spark-submit --master 'local[2]' filter_purchases.py --in /tmp/events --out /tmp/purchases
    spark-submit s3://bucket/code/filter_purchases.py --in s3://bucket/events/ --out hdfs:///t/p

    --in PATH     the events (CSV with a header, as ingest.py writes them)
    --out PATH    where the purchases go; defaults to RESPAWN_OUTPUT

Reads and writes through Spark (CSV with a header, the same columns); the events' strings
are kept as they are (no type inference), so the rows are the input's rows.
"""

import argparse
import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

COLUMNS = ["event_time", "event_type", "product_id", "price", "user_id", "user_session"]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="filter_purchases.py", description=__doc__.splitlines()[0])
    p.add_argument("--in", dest="input", required=True)
    p.add_argument("--out", default=os.environ.get("RESPAWN_OUTPUT"))
    args = p.parse_args(argv)
    if not args.out:
        p.error("--out is required (or RESPAWN_OUTPUT)")
    return args


def main(argv):
    args = parse_args(argv)
    spark = SparkSession.builder.appName("filter_purchases").getOrCreate()
    events = spark.read.option("header", True).csv(args.input)
    missing = [c for c in COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"{args.input} has no column {', '.join(missing)}")
    purchases = events.select(*COLUMNS).where(F.col("event_type") == "purchase")
    purchases.write.mode("overwrite").option("header", True).csv(args.out)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
