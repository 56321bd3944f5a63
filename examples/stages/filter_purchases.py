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

import csv
import os
import sys

import stagelib

PROG = "filter_purchases.py"


def parse_args(argv):
    p = stagelib.parser("Keep only purchase events.", with_in=True)
    return stagelib.parse_args(p, argv)


def main(argv=None):
    stagelib.start(PROG)
    args = parse_args(argv)
    inputs = stagelib.list_inputs(args.in_dir)
    if os.path.realpath(args.in_dir) == os.path.realpath(args.out):
        stagelib.die(f"output directory must differ from input directory: {args.out}")
    stagelib.prepare_out_dir(args.out)

    first_header = None
    kept = total = 0
    for index, src in enumerate(inputs):
        dst = os.path.join(args.out, f"part-{index:05d}.csv")
        with stagelib.csv_input(src), \
                open(src, encoding="utf-8", newline="", buffering=1 << 20) as fin:
            reader = csv.reader(fin)
            header = stagelib.read_header(reader, src)
            if first_header is None:
                first_header = header
                if "event_type" not in header:
                    stagelib.die(f"no event_type column in header of {src}", code=1)
                col = header.index("event_type")
            elif header != first_header:
                stagelib.die(f"header differs from {inputs[0]}: {src}", code=1)
            with stagelib.atomic_write(dst, buffering=1 << 20) as fout:
                writerow = csv.writer(fout, lineterminator="\n").writerow
                writerow(header)
                for row in reader:
                    total += 1
                    if len(row) != len(header):
                        stagelib.die_width(src, reader, len(header), row)
                    if row[col] == "purchase":
                        writerow(row)
                        kept += 1
    sys.stderr.write(f"{PROG}: kept {kept} of {total} rows from {len(inputs)} files\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
