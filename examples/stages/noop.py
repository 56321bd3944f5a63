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

import math
import os
import sys
import time

import stagelib

PROG = "noop.py"


def main(argv=None):
    stagelib.start(PROG)
    p = stagelib.parser("Sleep, then write a marker file.")
    p.add_argument("--sleep", type=float, default=0.0, help="seconds to sleep")
    args = stagelib.parse_args(p, argv)
    if not math.isfinite(args.sleep) or args.sleep < 0:
        p.error(f"--sleep must be a finite number >= 0, got {args.sleep}")
    stagelib.prepare_out_dir(args.out)
    time.sleep(args.sleep)
    dst = os.path.join(args.out, "noop.txt")
    with stagelib.output_file(dst) as f:
        f.write("noop\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
