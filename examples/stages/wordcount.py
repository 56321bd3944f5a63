#!/usr/bin/env python3
"""Quick-start step 2: count the words in every file of a directory.

Usage:
    wordcount.py --in DIR --out DIR

    --in DIR    input directory; every non-hidden regular file in it is read as
                UTF-8 text (undecodable bytes are replaced), in sorted name order.
    --out DIR   output directory, created if missing. Defaults to the
                RESPAWN_OUTPUT environment variable when --out is not given.

A word is a run of letters/digits, optionally joined by apostrophes ("don't"),
compared in lower case. Writes DIR/counts.csv with the header "word,count",
sorted by count (highest first), then by word. The file is written to a hidden
temporary file and renamed into place. Feed DIR to wordreport.py.

Exit status: 0 on success, 1 on unreadable input, 2 on bad arguments or a
missing/empty input directory.
"""

import argparse
import collections
import contextlib
import csv
import os
import re
import signal
import sys
import tempfile

PROG = "wordcount.py"
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


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
    p = _Parser(prog=PROG, description="Count words in all files of a directory.")
    p.add_argument("--in", dest="in_dir", required=True, help="input directory")
    p.add_argument("--out", default=os.environ.get("RESPAWN_OUTPUT") or None,
                   help="output directory (default: $RESPAWN_OUTPUT)")
    args = p.parse_args(argv)
    if not args.out:
        p.error("--out is required (or set RESPAWN_OUTPUT)")
    if not os.path.isdir(args.in_dir):
        die(f"input directory not found: {args.in_dir}")
    names = sorted(n for n in os.listdir(args.in_dir)
                   if not n.startswith(".") and os.path.isfile(os.path.join(args.in_dir, n)))
    if not names:
        die(f"no files in input directory: {args.in_dir}")
    prepare_out_dir(args.out)

    counts = collections.Counter()
    for name in names:
        src = os.path.join(args.in_dir, name)
        try:
            with open(src, encoding="utf-8", errors="replace") as f:
                for line in f:
                    counts.update(WORD.findall(line.lower()))
        except OSError as e:
            die(f"{src}: {e.strerror}", code=1)

    dst = os.path.join(args.out, "counts.csv")
    try:
        with atomic_write(dst) as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["word", "count"])
            w.writerows(sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])))
    except OSError as e:
        die(f"{e.filename or dst}: {e.strerror}", code=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
