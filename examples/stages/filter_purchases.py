#!/usr/bin/env python3
"""Keep only the purchase events of an e-commerce event dataset.

Usage:
    filter_purchases.py --in DIR --out DIR

    --in DIR    input directory; every non-hidden *.csv file in it is read, in
                sorted name order. All files must have the same header, which
                must contain an event_type column.
    --out DIR   output directory, created if missing. Defaults to the
                RESPAWN_OUTPUT environment variable when --out is not given.

For the i-th input file (in sorted order) writes DIR/part-{i:05d}.csv holding
the same header and the rows whose event_type is exactly "purchase", in input
order. Rows are streamed; output is deterministic. Each part is written to a
hidden temporary file and renamed into place, so a killed run never leaves a
half-written part-*.csv behind.

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

PROG = "filter_purchases.py"


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


def parse_args(argv):
    p = _Parser(prog=PROG, description="Keep only purchase events.")
    p.add_argument("--in", dest="in_dir", required=True, help="input directory")
    p.add_argument("--out", default=os.environ.get("RESPAWN_OUTPUT") or None,
                   help="output directory (default: $RESPAWN_OUTPUT)")
    args = p.parse_args(argv)
    if not args.out:
        p.error("--out is required (or set RESPAWN_OUTPUT)")
    return args


def main(argv=None):
    signal.signal(signal.SIGTERM, _on_sigterm)
    args = parse_args(argv)
    inputs = list_csv(args.in_dir)
    if os.path.realpath(args.in_dir) == os.path.realpath(args.out):
        die(f"output directory must differ from input directory: {args.out}")
    prepare_out_dir(args.out)

    first_header = None
    kept = total = 0
    for index, src in enumerate(inputs):
        dst = os.path.join(args.out, f"part-{index:05d}.csv")
        try:
            with open(src, encoding="utf-8", newline="", buffering=1 << 20) as fin:
                reader = csv.reader(fin)
                header = next(reader, None)
                if header is None:
                    die(f"empty file (no header): {src}", code=1)
                if first_header is None:
                    first_header = header
                    if "event_type" not in header:
                        die(f"no event_type column in header of {src}", code=1)
                    col = header.index("event_type")
                elif header != first_header:
                    die(f"header differs from {inputs[0]}: {src}", code=1)
                with atomic_write(dst) as fout:
                    writerow = csv.writer(fout, lineterminator="\n").writerow
                    writerow(header)
                    for row in reader:
                        total += 1
                        if len(row) != len(header):
                            die(f"{src}:{reader.line_num}: expected {len(header)} "
                                f"fields, got {len(row)}", code=1)
                        if row[col] == "purchase":
                            writerow(row)
                            kept += 1
        except csv.Error as e:
            die(f"{src}: malformed CSV: {e}", code=1)
        except UnicodeDecodeError:
            die(f"{src}: not valid UTF-8", code=1)
        except OSError as e:
            die(f"{e.filename or src}: {e.strerror}", code=1)
    sys.stderr.write(f"{PROG}: kept {kept} of {total} rows from {len(inputs)} files\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
