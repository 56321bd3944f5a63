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

import argparse
import contextlib
import csv
import os
import signal
import sys
import tempfile

PROG = "sessions.py"
OUT_HEADER = ["user_session", "last_event_time", "distinct_users", "events", "money_spent"]
NEEDED = ["event_time", "price", "user_id", "user_session"]


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


def parse_args(argv):
    p = _Parser(prog=PROG, description="Aggregate events per user session.")
    p.add_argument("--in", dest="in_dir", required=True, help="input directory")
    p.add_argument("--out", default=os.environ.get("RESPAWN_OUTPUT") or None,
                   help="output directory (default: $RESPAWN_OUTPUT)")
    args = p.parse_args(argv)
    if not args.out:
        p.error("--out is required (or set RESPAWN_OUTPUT)")
    return args


def aggregate(inputs):
    # session -> [last_event_time, user_id or set of user_ids, events, cents]
    agg = {}
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
                i_time, i_price, i_user, i_sess = (header.index(c) for c in NEEDED)
                width = len(header)
                for row in reader:
                    if len(row) != width:
                        die(f"{src}:{reader.line_num}: expected {width} fields, "
                            f"got {len(row)}", code=1)
                    try:
                        cents = parse_cents(row[i_price])
                    except ValueError:
                        die(f"{src}:{reader.line_num}: bad price {row[i_price]!r}", code=1)
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
        except csv.Error as e:
            die(f"{src}: malformed CSV: {e}", code=1)
        except UnicodeDecodeError:
            die(f"{src}: not valid UTF-8", code=1)
        except OSError as e:
            die(f"{e.filename or src}: {e.strerror}", code=1)
    return agg


def main(argv=None):
    signal.signal(signal.SIGTERM, _on_sigterm)
    args = parse_args(argv)
    inputs = list_csv(args.in_dir)
    prepare_out_dir(args.out)
    agg = aggregate(inputs)
    dst = os.path.join(args.out, "part-00000.csv")
    try:
        with atomic_write(dst) as fout:
            writerow = csv.writer(fout, lineterminator="\n").writerow
            writerow(OUT_HEADER)
            for sess in sorted(agg):
                last, users, events, cents = agg[sess]
                n_users = 1 if users.__class__ is str else len(users)
                writerow((sess, last, n_users, events, format_cents(cents)))
    except OSError as e:
        die(f"{e.filename or dst}: {e.strerror}", code=1)
    sys.stderr.write(f"{PROG}: {len(agg)} sessions from {len(inputs)} files\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
