#!/usr/bin/env python3
"""Do nothing for a while, then write a marker file.

Usage:
    noop.py --out DIR [--sleep SECONDS]

    --out DIR        output directory, created if missing. Defaults to the
                     RESPAWN_OUTPUT environment variable when --out is not given.
    --sleep SECONDS  how long to sleep before finishing (default 0; fractions
                     allowed). Useful to test timeouts, kills and preemption.

Writes DIR/noop.txt containing the line "noop" (same bytes every run), via a
hidden temporary file renamed into place. SIGTERM exits with status 143.

Exit status: 0 on success, 2 on bad arguments or an unusable output path.
"""

import argparse
import contextlib
import math
import os
import signal
import sys
import tempfile
import time

PROG = "noop.py"


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
    p = _Parser(prog=PROG, description="Sleep, then write a marker file.")
    p.add_argument("--out", default=os.environ.get("RESPAWN_OUTPUT") or None,
                   help="output directory (default: $RESPAWN_OUTPUT)")
    p.add_argument("--sleep", type=float, default=0.0, help="seconds to sleep")
    args = p.parse_args(argv)
    if not args.out:
        p.error("--out is required (or set RESPAWN_OUTPUT)")
    if not math.isfinite(args.sleep) or args.sleep < 0:
        p.error(f"--sleep must be a finite number >= 0, got {args.sleep}")
    prepare_out_dir(args.out)
    time.sleep(args.sleep)
    dst = os.path.join(args.out, "noop.txt")
    try:
        with atomic_write(dst) as f:
            f.write("noop\n")
    except OSError as e:
        die(f"{e.filename or dst}: {e.strerror}", code=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
