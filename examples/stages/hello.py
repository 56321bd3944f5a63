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

import os
import sys

import stagelib

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


def main(argv=None):
    stagelib.start(PROG)
    p = stagelib.parser("Write a small fixed text file.")
    args = stagelib.parse_args(p, argv)
    stagelib.prepare_out_dir(args.out)
    dst = os.path.join(args.out, "hello.txt")
    with stagelib.output_file(dst) as f:
        f.write(TEXT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
