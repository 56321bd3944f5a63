"""Generate a deterministic synthetic e-commerce event dataset, with Spark.

The PySpark version of examples/stages/ingest.py: one row per event over October 2019,
the columns of the Kaggle "eCommerce behavior data" 2019-Oct.csv:
    event_time,event_type,product_id,price,user_id,user_session

Usage (the same file on a laptop and on EMR):
    spark-submit --master 'local[2]' ingest.py --out /tmp/events --events 20000
    spark-submit --deploy-mode cluster s3://bucket/code/ingest.py --out s3://bucket/events/

    --out PATH    where the table goes (a local folder, s3://, hdfs://); defaults to the
                  RESPAWN_OUTPUT environment variable
    --events N    number of events (default 200000)
    --seed S      seed of the data (default 42)
    --files K     number of part files (default 4)

Written with `df.write` as CSV with a header, one file per partition, Spark's file names.
Every value is a pure function of the event's index and the seed (xxhash64), so the same
arguments give the same rows whatever the cluster, the partitioning or the Spark
version's random generator: about 88% view, 6% cart, 2% remove_from_cart, 4% purchase;
sessions of 6 consecutive events, about 2% of events from a second user of the session;
each product has one fixed price. Exit status: 0 on success, anything else is Spark's.
"""

import argparse
import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

MONTH_START = 1569888000  # 2019-10-01 00:00:00 UTC
MONTH_SECONDS = 31 * 24 * 3600
SESSION_EVENTS = 6


def parse_args(argv):
    p = argparse.ArgumentParser(prog="ingest.py", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("RESPAWN_OUTPUT"))
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--files", type=int, default=4)
    args = p.parse_args(argv)
    if not args.out:
        p.error("--out is required (or RESPAWN_OUTPUT)")
    if args.events < 0 or args.files < 1:
        p.error("--events must be >= 0 and --files >= 1")
    return args


def draw(column, salt, seed, modulo):
    """A value in [0, modulo) that depends only on the column's value, the salt and the seed."""
    return F.pmod(F.xxhash64(column, F.lit(seed), F.lit(salt)), F.lit(modulo))


def main(argv):
    args = parse_args(argv)
    spark = SparkSession.builder.appName("ingest").getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    n = args.events
    products = max(1000, min(200_000, n // 20))
    users = max(100, n // 20)
    event = F.col("id")
    session = F.floor(event / SESSION_EVENTS)
    kind = draw(event, 1, args.seed, 1000)
    product = F.lit(1_000_000) + draw(event, 2, args.seed, products)
    cents = F.lit(88) + draw(product, 3, args.seed, 257_319)
    user = F.lit(512_000_000) + draw(session, 4, args.seed, users)
    other = F.lit(512_000_000) + draw(event, 6, args.seed, users)
    token = F.sha2(F.concat_ws(":", F.lit(args.seed), session.cast("string")), 256)
    events = spark.range(0, n, 1, args.files).select(
        F.date_format(
            F.timestamp_seconds(
                F.lit(MONTH_START) + F.floor(event * F.lit(MONTH_SECONDS) / F.lit(max(n, 1)))
            ),
            "yyyy-MM-dd HH:mm:ss 'UTC'",
        ).alias("event_time"),
        F.when(kind < 880, "view")
        .when(kind < 940, "cart")
        .when(kind < 960, "remove_from_cart")
        .otherwise("purchase")
        .alias("event_type"),
        product.alias("product_id"),
        F.format_string("%d.%02d", F.floor(cents / 100), F.pmod(cents, F.lit(100))).alias("price"),
        F.when(draw(event, 5, args.seed, 100) < 2, other).otherwise(user).alias("user_id"),
        F.concat_ws(
            "-",
            F.substring(token, 1, 8),
            F.substring(token, 9, 4),
            F.substring(token, 13, 4),
            F.substring(token, 17, 4),
            F.substring(token, 21, 12),
        ).alias("user_session"),
    )
    events.write.mode("overwrite").option("header", True).csv(args.out)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
