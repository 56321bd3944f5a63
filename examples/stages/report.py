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

import argparse
import contextlib
import csv
import heapq
import os
import signal
import sys
import tempfile

PROG = "report.py"
NEEDED = ["user_session", "distinct_users", "events", "money_spent"]
TOP = 10


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def die(message, code=2):
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.exit(code)


def _on_sigterm(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds, so temporary files get removed


def list_csv(path):
    if not os.path.isdir(path):
        die(f"input directory not found: {path}")
    names = sorted(n for n in os.listdir(path)
                   if n.endswith(".csv") and not n.startswith(".")
                   and os.path.isfile(os.path.join(path, n)))
    if not names:
        die(f"no *.csv files in input directory: {path}")
    return [os.path.join(path, n) for n in names]


def prepare_out_dir(path):
    if os.path.exists(path) and not os.path.isdir(path):
        die(f"output path is not a directory: {path}")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        die(f"cannot create output directory {path}: {e.strerror}")


@contextlib.contextmanager
def atomic_write(path):
    """Open a hidden temp file next to `path`; rename it to `path` on success."""
    directory, base = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory or ".")
    try:
        os.fchmod(fd, 0o644)
        with open(fd, "w", encoding="utf-8", newline="", buffering=1 << 20) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def parse_cents(text):
    """'12.3' -> 1230, '-0.05' -> -5, '7' -> 700. Raises ValueError otherwise."""
    sign = 1
    if text[:1] == "-":
        sign, text = -1, text[1:]
    whole, dot, frac = text.partition(".")
    if not whole.isdigit() or (dot and not (frac.isdigit() and len(frac) <= 2)) \
            or not whole.isascii() or not frac.isascii():
        raise ValueError(text)
    return sign * (int(whole) * 100 + int(frac.ljust(2, "0") if dot else 0))


def format_cents(cents):
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def div_half_even(num, den):
    """Integer num/den rounded half-to-even (den > 0)."""
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q % 2 == 1):
        q += 1
    return q


def parse_args(argv):
    p = _Parser(prog=PROG, description="Summarise per-session aggregates.")
    p.add_argument("--in", dest="in_dir", required=True, help="input directory")
    p.add_argument("--out", default=os.environ.get("RESPAWN_OUTPUT") or None,
                   help="output directory (default: $RESPAWN_OUTPUT)")
    args = p.parse_args(argv)
    if not args.out:
        p.error("--out is required (or set RESPAWN_OUTPUT)")
    return args


def scan(inputs, stats):
    """Yield (cents, session) for every row, updating the totals in `stats`."""
    for src in inputs:
        try:
            with open(src, encoding="utf-8", newline="", buffering=1 << 20) as fin:
                reader = csv.reader(fin)
                header = next(reader, None)
                if header is None:
                    die(f"empty file (no header): {src}", code=1)
                missing = [c for c in NEEDED if c not in header]
                if missing:
                    die(f"missing column(s) {','.join(missing)} in header of {src}", code=1)
                i_sess, i_users, i_events, i_money = (header.index(c) for c in NEEDED)
                for row in reader:
                    if len(row) != len(header):
                        die(f"{src}:{reader.line_num}: expected {len(header)} fields, "
                            f"got {len(row)}", code=1)
                    try:
                        cents = parse_cents(row[i_money])
                        users = int(row[i_users])
                        events = int(row[i_events])
                    except ValueError:
                        die(f"{src}:{reader.line_num}: bad number in row", code=1)
                    stats["sessions"] += 1
                    stats["events"] += events
                    stats["revenue"] += cents
                    if users > 1:
                        stats["multi_user"] += 1
                    yield cents, row[i_sess]
        except csv.Error as e:
            die(f"{src}: malformed CSV: {e}", code=1)
        except UnicodeDecodeError:
            die(f"{src}: not valid UTF-8", code=1)
        except OSError as e:
            die(f"{e.filename or src}: {e.strerror}", code=1)


def main(argv=None):
    signal.signal(signal.SIGTERM, _on_sigterm)
    args = parse_args(argv)
    inputs = list_csv(args.in_dir)
    prepare_out_dir(args.out)

    stats = {"sessions": 0, "events": 0, "revenue": 0, "multi_user": 0}
    # Highest money first; equal money -> smaller session id first.
    top = heapq.nsmallest(TOP, scan(inputs, stats), key=lambda cs: (-cs[0], cs[1]))

    n = stats["sessions"]
    avg = format_cents(div_half_even(stats["revenue"], n)) if n else "n/a"
    lines = [
        "Session report",
        "==============",
        f"input files:                 {len(inputs)}",
        f"sessions:                    {n}",
        f"events:                      {stats['events']}",
        f"sessions with >1 user:       {stats['multi_user']}",
        f"total revenue:               {format_cents(stats['revenue'])}",
        f"average basket per session:  {avg}",
        "",
        f"Top {TOP} sessions by money spent",
        f"{'rank':>4}  {'user_session':<36}  {'money_spent':>12}",
    ]
    for rank, (cents, sess) in enumerate(top, 1):
        lines.append(f"{rank:>4}  {sess:<36}  {format_cents(cents):>12}")
    text = "\n".join(lines) + "\n"

    dst = os.path.join(args.out, "report.txt")
    try:
        with atomic_write(dst) as fout:
            fout.write(text)
    except OSError as e:
        die(f"{e.filename or dst}: {e.strerror}", code=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
