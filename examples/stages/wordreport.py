#!/usr/bin/env python3
"""Quick-start step 3: summarise the word counts written by wordcount.py.

Usage:
    wordreport.py --in DIR --out DIR

    --in DIR    input directory; every non-hidden *.csv file in it with the
                header "word,count" is read, in sorted name order (counts of
                the same word in several files are added up).
    --out DIR   output directory, created if missing. Defaults to the
                RESPAWN_OUTPUT environment variable when --out is not given.

Writes DIR/report.txt: total words, distinct words, and the 10 most frequent
words (ties broken by word). Same input, same bytes. Written to a hidden
temporary file and renamed into place.

Exit status: 0 on success, 1 on malformed input, 2 on bad arguments or a
missing/empty input directory.
"""

import argparse
import collections
import contextlib
import csv
import os
import signal
import sys
import tempfile

PROG = "wordreport.py"
TOP = 10


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def die(message, code=2):
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.exit(code)


def _on_sigterm(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds, so temporary files get removed


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
        with open(fd, "w", encoding="utf-8", newline="") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def main(argv=None):
    signal.signal(signal.SIGTERM, _on_sigterm)
    p = _Parser(prog=PROG, description="Summarise word counts.")
    p.add_argument("--in", dest="in_dir", required=True, help="input directory")
    p.add_argument("--out", default=os.environ.get("RESPAWN_OUTPUT") or None,
                   help="output directory (default: $RESPAWN_OUTPUT)")
    args = p.parse_args(argv)
    if not args.out:
        p.error("--out is required (or set RESPAWN_OUTPUT)")
    if not os.path.isdir(args.in_dir):
        die(f"input directory not found: {args.in_dir}")
    names = sorted(n for n in os.listdir(args.in_dir)
                   if n.endswith(".csv") and not n.startswith(".")
                   and os.path.isfile(os.path.join(args.in_dir, n)))
    if not names:
        die(f"no *.csv files in input directory: {args.in_dir}")
    prepare_out_dir(args.out)

    counts = collections.Counter()
    for name in names:
        src = os.path.join(args.in_dir, name)
        try:
            with open(src, encoding="utf-8", newline="") as f:
                reader = csv.reader(f)
                if next(reader, None) != ["word", "count"]:
                    die(f"expected header 'word,count' in {src}", code=1)
                for row in reader:
                    if len(row) != 2 or not row[1].isdigit():
                        die(f"{src}:{reader.line_num}: expected word,count", code=1)
                    counts[row[0]] += int(row[1])
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            die(f"{src}: {getattr(e, 'strerror', None) or e}", code=1)

    top = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))[:TOP]
    lines = [
        "Word report",
        "===========",
        f"total words:     {sum(counts.values())}",
        f"distinct words:  {len(counts)}",
        "",
        f"Top {TOP} words",
    ]
    lines += [f"{rank:>4}  {word:<20} {n:>6}" for rank, (word, n) in enumerate(top, 1)]
    dst = os.path.join(args.out, "report.txt")
    try:
        with atomic_write(dst) as f:
            f.write("\n".join(lines) + "\n")
    except OSError as e:
        die(f"{e.filename or dst}: {e.strerror}", code=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
