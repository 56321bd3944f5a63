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

import collections
import csv
import os
import re
import sys

import stagelib

PROG = "wordcount.py"
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def main(argv=None):
    stagelib.start(PROG)
    p = stagelib.parser("Count words in all files of a directory.", with_in=True)
    args = stagelib.parse_args(p, argv)
    inputs = stagelib.list_inputs(args.in_dir, suffix="")
    stagelib.prepare_out_dir(args.out)

    counts = collections.Counter()
    for src in inputs:
        try:
            with open(src, encoding="utf-8", errors="replace") as f:
                for line in f:
                    counts.update(WORD.findall(line.lower()))
        except OSError as e:
            stagelib.die(f"{src}: {e.strerror}", code=1)

    dst = os.path.join(args.out, "counts.csv")
    with stagelib.output_file(dst) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["word", "count"])
        w.writerows(sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
