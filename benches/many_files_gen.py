#!/usr/bin/env python3
"""Writes N files of a few bytes under OUT, in folders of 1,000 (part=00000/...).

Usage: many_files_gen.py OUT N   (benches/many_files.yaml runs it)."""
import os, sys
out, n = sys.argv[1], int(sys.argv[2])
per = 1000
for i in range(n):
    d = os.path.join(out, f"part={i // per:05d}")
    if i % per == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f-{i:07d}.txt"), "w") as f:
        f.write(f"{i}\n")
