#!/usr/bin/env python3
"""Write a plain-text summary of per-session aggregates.

Usage:
    report.py --in DIR --out DIR

    --in DIR    input directory holding the output of sessions.py: every
                non-hidden *.csv file in it is read, in sorted name order.
                Needed columns: user_session, distinct_users, events,
                money_spent.
    --out DIR   output directory, created if missing. Defaults to the
                RESPAWN_OUTPUT environment variable when --out is not given.

Writes DIR/report.txt with:
    - number of sessions, of events, and of sessions with more than one user
    - total revenue (sum of money_spent, exact, in integer cents)
    - average basket = total revenue / number of sessions, rounded half-even
      to the cent (for purchase-only input: the average spend per buying
      session)
    - top 10 sessions by money spent, ties broken by session id ascending
The report has no timestamps or other run-dependent content, so the same
input always gives the same bytes. Input is streamed; only the current top 10
is kept in memory. The report is written to a hidden temporary file and
renamed into place.

Exit status: 0 on success, 1 on malformed input, 2 on bad arguments or a
missing/empty input directory.
"""

import csv
import heapq
import os
import sys

import stagelib

PROG = "report.py"
NEEDED = ["user_session", "distinct_users", "events", "money_spent"]
TOP = 10


def div_half_even(num, den):
    """Integer num/den rounded half-to-even (den > 0)."""
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q % 2 == 1):
        q += 1
    return q


def parse_args(argv):
    p = stagelib.parser("Summarise per-session aggregates.", with_in=True)
    return stagelib.parse_args(p, argv)


def scan(inputs, stats):
    """Yield (cents, session) for every row, updating the totals in `stats`."""
    for src in inputs:
        with stagelib.csv_input(src), \
                open(src, encoding="utf-8", newline="", buffering=1 << 20) as fin:
            reader = csv.reader(fin)
            header = stagelib.read_header(reader, src, NEEDED)
            i_sess, i_users, i_events, i_money = (header.index(c) for c in NEEDED)
            for row in reader:
                if len(row) != len(header):
                    stagelib.die_width(src, reader, len(header), row)
                try:
                    cents = stagelib.parse_cents(row[i_money])
                    users = int(row[i_users])
                    events = int(row[i_events])
                except ValueError:
                    stagelib.die(f"{src}:{reader.line_num}: bad number in row", code=1)
                stats["sessions"] += 1
                stats["events"] += events
                stats["revenue"] += cents
                if users > 1:
                    stats["multi_user"] += 1
                yield cents, row[i_sess]


def main(argv=None):
    stagelib.start(PROG)
    args = parse_args(argv)
    inputs = stagelib.list_inputs(args.in_dir)
    stagelib.prepare_out_dir(args.out)

    stats = {"sessions": 0, "events": 0, "revenue": 0, "multi_user": 0}
    # Highest money first; equal money -> smaller session id first.
    top = heapq.nsmallest(TOP, scan(inputs, stats), key=lambda cs: (-cs[0], cs[1]))

    n = stats["sessions"]
    avg = stagelib.format_cents(div_half_even(stats["revenue"], n)) if n else "n/a"
    lines = [
        "Session report",
        "==============",
        f"input files:                 {len(inputs)}",
        f"sessions:                    {n}",
        f"events:                      {stats['events']}",
        f"sessions with >1 user:       {stats['multi_user']}",
        f"total revenue:               {stagelib.format_cents(stats['revenue'])}",
        f"average basket per session:  {avg}",
        "",
        f"Top {TOP} sessions by money spent",
        f"{'rank':>4}  {'user_session':<36}  {'money_spent':>12}",
    ]
    for rank, (cents, sess) in enumerate(top, 1):
        lines.append(f"{rank:>4}  {sess:<36}  {stagelib.format_cents(cents):>12}")
    text = "\n".join(lines) + "\n"

    dst = os.path.join(args.out, "report.txt")
    with stagelib.output_file(dst, buffering=1 << 20) as fout:
        fout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
