#!/usr/bin/env python3
"""Interruption notices: lost work with and without a warning before each loss.

    cargo build --release --bin respawn
    python3 benches/notices.py --seeds 6

1. Chaos runs (local clusters, local-directory store) of two workflows, the same seeds
   with and without `notice=`: lost work is interrupted attempts plus recomputed producers,
   in stage-hours, from `respawn cost --format json`; and how long after each `notice`
   event the replacement's `provision` event came.
   - the e-commerce workflow (`workflows/ecommerce-sessions.yaml`, 20,000 events, each
     stage preceded by `sleep 1` so that a loss can fall inside a stage; `purchases`
     ephemeral);
   - a diamond with a tail of five one-second stages, nothing checkpointed but the final
     (`tests/notice.rs`'s DAG).
2. The simulator: a chain of hour-long stages beside a two-hour branch, 10-minute
   provisioning, work-tables a minute to write, policy `auto`; the mean makespan over the
   failure-free makespan, with a two-minute notice and without, at MTTI 1h, 2h and 10h
   (2,000 trials, seed 1).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESPAWN = os.path.join(REPO, "target", "release", "respawn")

DAG = """name: notice-dag
cluster: {provider: local, market: spot, mtti: 5s, provision_time: 1s, slots: 2}
checkpoint: {policy: none, write_throughput: 100MB/s}
stages:
  a: {run: 'sleep 0.7 && mkdir -p {{ output }} && echo a > {{ output }}/part', estimate: 1s, output_size: 1KB}
  b: {needs: [a], run: 'sleep 0.7 && mkdir -p {{ output }} && (cat {{ inputs.a }}/part; echo b) > {{ output }}/part', estimate: 1s, output_size: 1KB}
  c: {needs: [a], run: 'sleep 0.7 && mkdir -p {{ output }} && (cat {{ inputs.a }}/part; echo c) > {{ output }}/part', estimate: 1s, output_size: 1KB}
  d: {needs: [b, c], run: 'sleep 0.7 && mkdir -p {{ output }} && (cat {{ inputs.b }}/part {{ inputs.c }}/part; echo d) > {{ output }}/part', estimate: 1s, output_size: 1KB}
  e: {needs: [d], run: 'sleep 0.7 && mkdir -p {{ output }} && (cat {{ inputs.d }}/part; echo e) > {{ output }}/part', estimate: 1s, output_size: 1KB}
"""

HOURS = """name: hours
cluster: {provider: local, market: spot, mtti: 2h, provision_time: 10m, slots: 2}
checkpoint: {policy: auto, write_throughput: 100MB/s}
stages:
  a: {run: 'true', estimate: 1h, output_size: 6GB}
  b: {run: 'true', needs: [a], estimate: 1h, output_size: 6GB}
  c: {run: 'true', needs: [b], estimate: 1h, output_size: 6GB}
  d: {run: 'true', needs: [c], estimate: 1h, output_size: 6GB}
  side: {run: 'true', needs: [a], estimate: 2h, output_size: 6GB}
  end: {run: 'true', needs: [d, side], estimate: 1h, output_size: 6GB}
"""


def shop():
    with open(os.path.join(REPO, "workflows", "ecommerce-sessions.yaml")) as f:
        text = f.read()
    text = text.replace("{{ workflow_dir }}/../examples", os.path.join(REPO, "examples"))
    text = text.replace("--events 200000", "--events 20000")
    text = text.replace("provision_time: 10m", "provision_time: 1s")
    text = text.replace("  purchases:\n", "  purchases:\n    checkpoint: never\n")
    return text.replace("run: python3", "run: sleep 1 && python3")


def run(tmp, name, workflow_text, batch, chaos):
    path = os.path.join(tmp, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(workflow_text)
    store = os.path.join(tmp, "store")
    args = [RESPAWN, "run", path, "--batch", batch, "--store", store,
            "--scratch", os.path.join(tmp, "scratch"), "--format", "json", "--chaos", chaos]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    workflow = re.search(r"^name: (\S+)", workflow_text, re.M).group(1)
    cost = json.loads(subprocess.run(
        [RESPAWN, "cost", workflow, "--batch", batch, "--store", store, "--format", "json"],
        capture_output=True, text=True, check=True).stdout)
    waste = cost["waste"]
    lost = waste["interrupted_attempts"]["hours"] + waste["recomputed_producers"]["hours"]
    return lost, events


def provision_delays(events):
    delays = []
    for at, event in enumerate(events):
        if event["event"] != "notice":
            continue
        for later in events[at:]:
            if later["event"] == "provision":
                delays.append(later["elapsed_s"] - event["elapsed_s"])
                break
    return delays


def chaos_table(seeds):
    rows = []
    for name, text in [("ecommerce-sessions", shop()), ("notice-dag", DAG)]:
        without, with_notice, delays, notices = 0.0, 0.0, [], 0
        for seed in range(1, seeds + 1):
            with tempfile.TemporaryDirectory() as tmp:
                lost, _ = run(tmp, name, text, f"plain-{seed}", f"mtti=3s,seed={seed},provision=1s")
                without += lost
                lost, events = run(tmp, name, text, f"warned-{seed}",
                                   f"mtti=3s,seed={seed},provision=1s,notice=1s")
                with_notice += lost
                delays += provision_delays(events)
                notices += sum(1 for e in events if e["event"] == "notice")
        ratio = with_notice / without if without else float("nan")
        rows.append((name, seeds, notices, without * 3600, with_notice * 3600, ratio,
                     max(delays) if delays else float("nan")))
    print("| workflow | seeds | notices | lost work without (s) | with notice=1s (s) | ratio | slowest replacement request after a notice (s) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| {} | {} | {} | {:.1f} | {:.1f} | {:.2f}x | {:.3f} |".format(*row))


def simulate(path, mtti, notice):
    out = subprocess.run([RESPAWN, "simulate", path, "--mtti", mtti, "--notice", notice,
                          "--trials", "2000", "--seed", "1", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    auto = next(p for p in report["policies"] if p["name"] == "auto")
    return auto["mean_makespan_s"], report["lower_bound_s"], auto["mean_lost_work_s"]


def sim_table():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hours.yaml")
        with open(path, "w") as f:
            f.write(HOURS)
        print("| MTTI | overhead without notice | with a 2m notice | lost work without (h) | with (h) |")
        print("|---|---|---|---|---|")
        for mtti in ["1h", "2h", "10h"]:
            plain, bound, lost_plain = simulate(path, mtti, "0s")
            warned, _, lost_warned = simulate(path, mtti, "2m")
            print(f"| {mtti} | {(plain / bound - 1) * 100:.1f}% | {(warned / bound - 1) * 100:.1f}% "
                  f"| {lost_plain / 3600:.2f} | {lost_warned / 3600:.2f} |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args()
    if not os.path.exists(RESPAWN):
        sys.exit("build first: cargo build --release --bin respawn")
    chaos_table(args.seeds)
    print()
    sim_table()


if __name__ == "__main__":
    main()
