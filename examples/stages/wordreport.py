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

import collections
import csv
import os
import sys

import stagelib

PROG = "wordreport.py"
TOP = 10


def main(argv=None):
    stagelib.start(PROG)
    p = stagelib.parser("Summarise word counts.", with_in=True)
    args = stagelib.parse_args(p, argv)
    inputs = stagelib.list_inputs(args.in_dir)
    stagelib.prepare_out_dir(args.out)

    counts = collections.Counter()
    for src in inputs:
        try:
            with open(src, encoding="utf-8", newline="") as f:
                reader = csv.reader(f)
                if next(reader, None) != ["word", "count"]:
                    stagelib.die(f"expected header 'word,count' in {src}", code=1)
                for row in reader:
                    if len(row) != 2 or not row[1].isdigit():
                        stagelib.die(f"{src}:{reader.line_num}: expected word,count", code=1)
                    counts[row[0]] += int(row[1])
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            stagelib.die(f"{src}: {getattr(e, 'strerror', None) or e}", code=1)

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
    with stagelib.output_file(dst) as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
