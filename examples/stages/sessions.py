#!/usr/bin/env python3
"""Aggregate e-commerce events per user session.

Usage:
    sessions.py --in DIR --out DIR

    --in DIR    input directory; every non-hidden *.csv file in it is read, in
                sorted name order. Needed columns: event_time, price, user_id,
                user_session (any order, extra columns ignored).
    --out DIR   output directory, created if missing. Defaults to the
                RESPAWN_OUTPUT environment variable when --out is not given.

Writes DIR/part-00000.csv with the header
    user_session,last_event_time,distinct_users,events,money_spent
one row per session, sorted by user_session:
    last_event_time  latest event_time of the session (the timestamps are
                     "YYYY-MM-DD HH:MM:SS UTC", so string order is time order)
    distinct_users   number of distinct user_id values in the session
    events           number of events (rows) in the session
    money_spent      sum of price over the session's rows, exact (integer
                     cents), printed with 2 decimals
Rows are streamed; only one small aggregate per session is kept in memory.
Prices must have at most 2 decimals. The output is written to a hidden
temporary file and renamed into place.

Exit status: 0 on success, 1 on malformed input, 2 on bad arguments or a
missing/empty input directory.
"""

import csv
import os
import sys

import stagelib

PROG = "sessions.py"
OUT_HEADER = ["user_session", "last_event_time", "distinct_users", "events", "money_spent"]
NEEDED = ["event_time", "price", "user_id", "user_session"]


def parse_args(argv):
    p = stagelib.parser("Aggregate events per user session.", with_in=True)
    return stagelib.parse_args(p, argv)


def aggregate(inputs):
    # session -> [last_event_time, user_id or set of user_ids, events, cents]
    agg = {}
    for src in inputs:
        with stagelib.csv_input(src), \
                open(src, encoding="utf-8", newline="", buffering=1 << 20) as fin:
            reader = csv.reader(fin)
            header = stagelib.read_header(reader, src, NEEDED)
            i_time, i_price, i_user, i_sess = (header.index(c) for c in NEEDED)
            width = len(header)
            for row in reader:
                if len(row) != width:
                    stagelib.die_width(src, reader, width, row)
                try:
                    cents = stagelib.parse_cents(row[i_price])
                except ValueError:
                    stagelib.die(f"{src}:{reader.line_num}: bad price {row[i_price]!r}",
                                 code=1)
                t = row[i_time]
                u = row[i_user]
                a = agg.get(row[i_sess])
                if a is None:
                    agg[row[i_sess]] = [t, u, 1, cents]
                    continue
                if t > a[0]:
                    a[0] = t
                users = a[1]
                if users.__class__ is str:
                    if u != users:
                        a[1] = {users, u}
                else:
                    users.add(u)
                a[2] += 1
                a[3] += cents
    return agg


def main(argv=None):
    stagelib.start(PROG)
    args = parse_args(argv)
    inputs = stagelib.list_inputs(args.in_dir)
    stagelib.prepare_out_dir(args.out)
    agg = aggregate(inputs)
    dst = os.path.join(args.out, "part-00000.csv")
    with stagelib.output_file(dst, buffering=1 << 20) as fout:
        writerow = csv.writer(fout, lineterminator="\n").writerow
        writerow(OUT_HEADER)
        for sess in sorted(agg):
            last, users, events, cents = agg[sess]
            n_users = 1 if users.__class__ is str else len(users)
            writerow((sess, last, n_users, events, stagelib.format_cents(cents)))
    sys.stderr.write(f"{PROG}: {len(agg)} sessions from {len(inputs)} files\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
