#!/usr/bin/env python3
"""Quick-start step 1: write a small fixed text file.

Usage:
    hello.py --out DIR

    --out DIR   output directory, created if missing. Defaults to the
                RESPAWN_OUTPUT environment variable when --out is not given.

Writes DIR/hello.txt (a few lines of English text, identical bytes on every
run) via a hidden temporary file renamed into place. Feed DIR to wordcount.py.

Exit status: 0 on success, 2 on bad arguments or an unusable output path.
"""

import argparse
import contextlib
import os
import signal
import sys
import tempfile

PROG = "hello.py"
TEXT = """\
Hello, world.
This is the quick-start workflow.
Step one writes this text, step two counts its words,
and step three writes a short report about the counts.
Every step gives the same output for the same input,
so any step can safely be run again.
Hello again, world.
"""


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
    p = _Parser(prog=PROG, description="Write a small fixed text file.")
    p.add_argument("--out", default=os.environ.get("RESPAWN_OUTPUT") or None,
                   help="output directory (default: $RESPAWN_OUTPUT)")
    args = p.parse_args(argv)
    if not args.out:
        p.error("--out is required (or set RESPAWN_OUTPUT)")
    prepare_out_dir(args.out)
    dst = os.path.join(args.out, "hello.txt")
    try:
        with atomic_write(dst) as f:
            f.write(TEXT)
    except OSError as e:
        die(f"{e.filename or dst}: {e.strerror}", code=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
