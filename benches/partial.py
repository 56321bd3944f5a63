#!/usr/bin/env python3
"""Partial losses: one-node losses on local chaos runs, and the simulator against them.

    cargo build --release --bin respawn
    python3 benches/partial.py --seeds 30

The diamond of `benches/notices.py` (five stages of 1.5 s on two slots, nothing
checkpointed but the final) with `retries: 0`, each stage's estimate set to what it
measures in a run without chaos. For `partial=1` and `partial=0.5`, `--seeds` chaos runs
(`--chaos mtti=3s,seed=N,provision=1s,partial=P`, `--no-history`) print:

- how many succeeded, and how many published exactly the output of a run without chaos;
- one-node losses (`capacity-lost`), attempts they interrupted, whole-cluster losses, and
  the failures charged to the stages (the run records' `failures`);
- the mean lost work per run (`respawn cost`: interrupted attempts plus recomputed
  producers) against `respawn simulate --mtti 3s --partial P` (policy `none`, 4,000
  trials).
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from notices import RESPAWN, mean_and_error, measured_estimates  # noqa: E402


def published(store, batch):
    found = {}
    for path in glob.glob(os.path.join(store, "notice-dag", "outputs", "*", batch, "**"), recursive=True):
        if os.path.isfile(path) and not path.endswith("_SUCCESS"):
            with open(path, "rb") as f:
                found[os.path.relpath(path, os.path.join(store, "notice-dag", "outputs")).replace(batch, "B")] = f.read()
    return found


def run(tmp, path, batch, chaos):
    store = os.path.join(tmp, "store")
    args = [RESPAWN, "run", path, "--batch", batch, "--store", store, "--no-history",
            "--scratch", os.path.join(tmp, "scratch"), "--format", "json"]
    if chaos:
        args += ["--chaos", chaos]
    out = subprocess.run(args, capture_output=True, text=True)
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    cost = json.loads(subprocess.run(
        [RESPAWN, "cost", "notice-dag", "--batch", batch, "--store", store, "--format", "json"],
        capture_output=True, text=True, check=True).stdout)
    waste = cost["waste"]
    lost = (waste["interrupted_attempts"]["hours"] + waste["recomputed_producers"]["hours"]) * 3600
    status = json.loads(subprocess.run(
        [RESPAWN, "status", "notice-dag", "--batch", batch, "--store", store, "--format", "json"],
        capture_output=True, text=True, check=True).stdout)
    failures = sum(s.get("failures", 0) for s in status.get("stages", {}).values()) \
        if isinstance(status.get("stages"), dict) else \
        sum(s.get("failures", 0) for s in status.get("stages", []))
    return out.returncode, events, lost, failures, published(store, batch)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        text = measured_estimates(tmp).replace("checkpoint: {policy: none", "retries: 0\ncheckpoint: {policy: none")
        path = os.path.join(tmp, "notice-dag.yaml")
        with open(path, "w") as f:
            f.write(text)
        code, _, _, _, want = run(tmp, path, "calm-2", None)
        assert code == 0 and want, "the run without chaos"
        print("| partial | runs | succeeded | outputs identical | one-node losses | attempts interrupted "
              "| cluster losses | failures charged | measured lost work per run (s) | simulated (s) | simulated / measured |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for partial in ("1", "0.5"):
            ok = same = nodes = interrupted = clusters = failures = 0
            lost = []
            for seed in range(1, args.seeds + 1):
                chaos = f"mtti=3s,seed={seed},provision=1s,partial={partial}"
                code, events, run_lost, charged, outputs = run(tmp, path, f"p{partial}-{seed}", chaos)
                ok += code == 0
                same += outputs == want
                nodes += sum(e["event"] == "capacity-lost" for e in events)
                interrupted += sum(e["event"] == "interrupted" for e in events)
                clusters += sum(e["event"] == "cluster-lost" for e in events)
                failures += charged
                lost.append(run_lost)
            mean, error = mean_and_error(lost)
            out = subprocess.run([RESPAWN, "simulate", path, "--mtti", "3s", "--partial", partial,
                                  "--trials", "4000", "--seed", "1", "--format", "json", "--no-history"],
                                 capture_output=True, text=True, check=True).stdout
            none = next(p for p in json.loads(out)["policies"] if p["name"] == "none")
            predicted = none["mean_lost_work_s"]
            print(f"| {partial} | {args.seeds} | {ok} | {same} | {nodes} | {interrupted} | {clusters} | {failures} "
                  f"| {mean:.2f} ± {error:.2f} | {predicted:.2f} | {predicted / mean:.2f} |")


if __name__ == "__main__":
    main()
