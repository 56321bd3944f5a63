#!/usr/bin/env python3
"""Interruption notices: lost work with and without a warning before each loss.

    cargo build --release --bin respawn
    python3 benches/notices.py --seeds 6                 # all three tables
    python3 benches/notices.py --only vs --seeds-vs 200 --vs-notices 500ms

1. Chaos runs (local clusters, local-directory store) of two workflows, the same seeds
   with and without `notice=`: lost work is interrupted attempts plus recomputed producers,
   in stage-hours, from `respawn cost --format json`; and how long after each `notice`
   event the replacement's `provision` event came.
   - the e-commerce workflow (`workflows/ecommerce-sessions.yaml`, 20,000 events, each
     stage preceded by `sleep 1` so that a loss can fall inside a stage; `purchases`
     ephemeral);
   - a diamond with a tail of five one-second stages, nothing checkpointed but the final
     (`tests/notice.rs`'s DAG).
2. The simulator against the chaos runs: the DAG with stages of 1.5 s (longer than the
   notice, so that a notice does not save everything) and each stage's estimate set to what
   it measures in a run without chaos; `--seeds-vs` chaos runs at mtti=3s, provision=1s,
   with and without notice=0.5s, against `respawn simulate --mtti 3s --notice 500ms`
   (policy `none`, the DAG's own, 4,000 trials): mean lost work per run.
3. The simulator: a chain of hour-long stages beside a two-hour branch, 10-minute
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


VS_DAG = DAG.replace("sleep 0.7", "sleep 1.5")


def measured_estimates(tmp):
    """VS_DAG with each stage's estimate set to its duration in a run without chaos."""
    path = os.path.join(tmp, "calm.yaml")
    with open(path, "w") as f:
        f.write(VS_DAG)
    store = os.path.join(tmp, "calm-store")
    out = subprocess.run([RESPAWN, "run", path, "--batch", "calm", "--store", store,
                          "--scratch", os.path.join(tmp, "scratch"), "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    started, text = {}, VS_DAG
    for event in events:
        if event["event"] == "launch":
            started[event["stage"]] = event["elapsed_s"]
        elif event["event"] == "exit":
            ms = round((event["elapsed_s"] - started[event["stage"]]) * 1000)
            stage = event["stage"]
            text = re.sub(rf"(  {stage}: {{.*)estimate: 1s", rf"\g<1>estimate: {ms}ms", text)
    return text


def mean_and_error(values):
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)
    return mean, (var / len(values)) ** 0.5


def sim_vs_chaos(seeds, notices, seed_start):
    with tempfile.TemporaryDirectory() as tmp:
        text = measured_estimates(tmp)
        path = os.path.join(tmp, "notice-dag.yaml")
        with open(path, "w") as f:
            f.write(text)
        print("| notice | chaos runs | measured lost work per run (s) | simulated (s) | simulated / measured |")
        print("|---|---|---|---|---|")
        for notice in notices:
            lost = []
            for seed in range(seed_start, seed_start + seeds):
                chaos = f"mtti=3s,seed={seed},provision=1s"
                if notice != "0s":
                    chaos += f",notice={notice}"
                hours, _ = run(tmp, "notice-dag", text, f"vs-{notice}-{seed}", chaos)
                lost.append(hours * 3600)
            print(f"lost work per run, notice {notice}: {json.dumps(lost)}", file=sys.stderr)
            mean, error = mean_and_error(lost)
            out = subprocess.run([RESPAWN, "simulate", path, "--mtti", "3s", "--notice", notice,
                                  "--trials", "4000", "--seed", "1", "--format", "json"],
                                 capture_output=True, text=True, check=True).stdout
            none = next(p for p in json.loads(out)["policies"] if p["name"] == "none")
            predicted = none["mean_lost_work_s"]
            print(f"| {notice} | {seeds} | {mean:.2f} ± {error:.2f} | {predicted:.2f} | "
                  f"{predicted / mean:.2f} |")


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
    parser.add_argument("--seeds-vs", type=int, default=60,
                        help="chaos runs per row of the simulator-against-chaos table")
    parser.add_argument("--vs-notices", default="0s,500ms",
                        help="the notices of the simulator-against-chaos rows")
    parser.add_argument("--seed-start", type=int, default=1)
    parser.add_argument("--only", choices=["chaos", "vs", "sim"], help="one table only")
    args = parser.parse_args()
    if not os.path.exists(RESPAWN):
        sys.exit("build first: cargo build --release --bin respawn")
    if args.only in (None, "chaos"):
        chaos_table(args.seeds)
        print()
    if args.only in (None, "vs"):
        sim_vs_chaos(args.seeds_vs, args.vs_notices.split(","), args.seed_start)
        print()
    if args.only in (None, "sim"):
        sim_table()


if __name__ == "__main__":
    main()
