"""Helpers shared by the stage programs in this directory (standard library only).

Each stage does `import stagelib`; Python puts a script's own directory first
on sys.path, so `python3 /any/path/examples/stages/STAGE.py` finds this module
from any working directory. A stage calls start(PROG) first: it names the
program in error messages and makes SIGTERM unwind (removing temporary files)
and exit with status 143. Errors are one line on stderr, "PROG: error: ...";
bad arguments and unusable input/output directories exit 2, failures while
reading or writing data exit 1.
"""

import argparse
import contextlib
import csv
import os
import signal
import sys
import tempfile

PROG = "stage"  # replaced by start()


class Parser(argparse.ArgumentParser):
    """ArgumentParser that reports errors as one line and exits 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _on_sigterm(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds, so temporary files get removed


def start(prog):
    """Set the program name used in messages and install the SIGTERM handler."""
    global PROG
    PROG = prog
    signal.signal(signal.SIGTERM, _on_sigterm)


def die(message, code=2):
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.exit(code)


def parser(description, with_in=False):
    """A Parser with a required --in DIR (if with_in) and --out DIR, whose
    default is $RESPAWN_OUTPUT. Stage-specific options are added after these."""
    p = Parser(prog=PROG, description=description)
    if with_in:
        p.add_argument("--in", dest="in_dir", required=True, help="input directory")
    p.add_argument("--out", default=os.environ.get("RESPAWN_OUTPUT") or None,
                   help="output directory (default: $RESPAWN_OUTPUT)")
    return p


def parse_args(p, argv):
    """Parse argv with p; exit 2 if there is neither --out nor $RESPAWN_OUTPUT."""
    args = p.parse_args(argv)
    if not args.out:
        p.error("--out is required (or set RESPAWN_OUTPUT)")
    return args


def list_inputs(path, suffix=".csv"):
    """Paths of the non-hidden regular files in directory `path` whose names end
    with `suffix` ("" for any), in sorted name order. Exits 2 if `path` is not a
    directory or holds no such file."""
    if not os.path.isdir(path):
        die(f"input directory not found: {path}")
    names = sorted(n for n in os.listdir(path)
                   if n.endswith(suffix) and not n.startswith(".")
                   and os.path.isfile(os.path.join(path, n)))
    if not names:
        die(f"no {'*' + suffix + ' ' if suffix else ''}files in input directory: {path}")
    return [os.path.join(path, n) for n in names]


def prepare_out_dir(path):
    """Create output directory `path` if missing; exit 2 if that is impossible."""
    if os.path.exists(path) and not os.path.isdir(path):
        die(f"output path is not a directory: {path}")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        die(f"cannot create output directory {path}: {e.strerror}")


@contextlib.contextmanager
def atomic_write(path, buffering=-1):
    """Open a hidden temp file next to `path`; rename it to `path` on success."""
    directory, base = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory or ".")
    try:
        os.fchmod(fd, 0o644)
        with open(fd, "w", encoding="utf-8", newline="", buffering=buffering) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def output_file(path, buffering=-1):
    """atomic_write(path), exiting 1 with a one-line message if writing fails."""
    try:
        with atomic_write(path, buffering) as f:
            yield f
    except OSError as e:
        die(f"{e.filename or path}: {e.strerror}", code=1)


@contextlib.contextmanager
def csv_input(src):
    """Run the body (reading CSV file `src`), exiting 1 with a one-line message
    on malformed CSV, invalid UTF-8 or an OS error."""
    try:
        yield
    except csv.Error as e:
        die(f"{src}: malformed CSV: {e}", code=1)
    except UnicodeDecodeError:
        die(f"{src}: not valid UTF-8", code=1)
    except OSError as e:
        die(f"{e.filename or src}: {e.strerror}", code=1)


def read_header(reader, src, needed=()):
    """First row of csv `reader`; exits 1 if there is none or it lacks a column
    of `needed`."""
    header = next(reader, None)
    if header is None:
        die(f"empty file (no header): {src}", code=1)
    missing = [c for c in needed if c not in header]
    if missing:
        die(f"missing column(s) {','.join(missing)} in header of {src}", code=1)
    return header


def die_width(src, reader, width, row):
    """Exit 1: the row just read from `src` has not `width` fields."""
    die(f"{src}:{reader.line_num}: expected {width} fields, got {len(row)}", code=1)


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
