"""The daily orders pipeline of workflows/orders-daily.yaml (standard library only).

  orders.py bronze --date D [--landing DIR] --out OUT   one day's orders, as landed
  orders.py silver --in BRONZE --out OUT                typed, deduplicated, sorted
  orders.py gold --in SILVER --out OUT                  revenue per category
  orders.py check-amounts --in DIR                      a check: amounts are numbers >= 0
  orders.py check-rows --in DIR --at-least N            a check: enough orders that day

bronze copies DIR/D.csv when it exists (drop a file there to replay a day's real
data), else makes that day's orders from the date alone, so every run of a date
lands the same bytes. The checks print what is wrong and exit 1.
"""

import csv
import hashlib
import os
import random
import sys

import stagelib

CATEGORIES = ["books", "garden", "kitchen", "toys"]


def bronze(args):
    stagelib.prepare_out_dir(args.out)
    landed = os.path.join(args.landing, f"{args.date}.csv") if args.landing else None
    if landed and os.path.isfile(landed):
        with stagelib.csv_input(landed), open(landed, encoding="utf-8", newline="") as src:
            rows = list(csv.reader(src))
    else:
        seed = int.from_bytes(hashlib.sha256(args.date.encode()).digest()[:8], "big")
        rng = random.Random(seed)
        rows = [["order_id", "category", "amount"]]
        for n in range(rng.randint(150, 250)):
            amount = f"{rng.uniform(2, 120):.2f}"
            rows.append([f"{args.date}-{n:04d}", rng.choice(CATEGORIES), amount])
    with stagelib.output_file(os.path.join(args.out, "orders.csv")) as out:
        csv.writer(out, lineterminator="\n").writerows(rows)


def read_orders(directory):
    """The rows of DIR/orders.csv as dicts; exits 1 when it is malformed."""
    src = os.path.join(directory, "orders.csv")
    with stagelib.csv_input(src), open(src, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = stagelib.read_header(reader, src, ("order_id", "category", "amount"))
        return [dict(zip(header, row)) for row in reader if row]


def silver(args):
    stagelib.prepare_out_dir(args.out)
    orders = {row["order_id"]: row for row in read_orders(args.in_dir)}
    with stagelib.output_file(os.path.join(args.out, "orders.csv")) as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["order_id", "category", "amount"])
        for order_id in sorted(orders):
            row = orders[order_id]
            writer.writerow([order_id, row["category"].strip().lower(), row["amount"].strip()])


def gold(args):
    stagelib.prepare_out_dir(args.out)
    revenue = {}
    for row in read_orders(args.in_dir):
        revenue[row["category"]] = revenue.get(row["category"], 0.0) + float(row["amount"])
    with stagelib.output_file(os.path.join(args.out, "revenue.csv")) as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["category", "revenue"])
        for category in sorted(revenue):
            writer.writerow([category, f"{revenue[category]:.2f}"])


def check_amounts(args):
    bad = []
    for row in read_orders(args.in_dir):
        try:
            ok = float(row["amount"]) >= 0
        except ValueError:
            ok = False
        if not ok:
            bad.append(f"{row['order_id']}: amount {row['amount']!r}")
    if bad:
        print(f"{len(bad)} order(s) with an amount that is not a number >= 0:", *bad[:10], sep="\n")
        sys.exit(1)
    print("every amount is a number >= 0")


def check_rows(args):
    count = len(read_orders(args.in_dir))
    print(f"{count} order(s); at least {args.at_least} expected")
    sys.exit(0 if count >= args.at_least else 1)


def main(argv):
    stagelib.start("orders.py")
    p = stagelib.Parser(prog="orders.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True)
    b = sub.add_parser("bronze")
    b.add_argument("--date", required=True)
    b.add_argument("--landing")
    for name in ("bronze", "silver", "gold"):
        step = b if name == "bronze" else sub.add_parser(name)
        if name != "bronze":
            step.add_argument("--in", dest="in_dir", required=True)
        step.add_argument("--out", default=os.environ.get("RESPAWN_OUTPUT"), required=False)
    sub.add_parser("check-amounts").add_argument("--in", dest="in_dir", required=True)
    rows = sub.add_parser("check-rows")
    rows.add_argument("--in", dest="in_dir", required=True)
    rows.add_argument("--at-least", type=int, default=1)
    args = p.parse_args(argv)
    if args.step in ("bronze", "silver", "gold") and not args.out:
        p.error("--out is required (or set RESPAWN_OUTPUT)")
    steps = {"bronze": bronze, "silver": silver, "gold": gold,
             "check-amounts": check_amounts, "check-rows": check_rows}
    steps[args.step](args)


if __name__ == "__main__":
    main(sys.argv[1:])
