#!/usr/bin/env python3
"""The public spot traces replayed by the simulator: spot, on-demand and `market: auto`,
planned from the file's exponential model, from another trace, or from an exponential
model with that other trace's mean time between losses.

    cargo build --release --bin respawn
    python3 benches/traces.py [--traces DIR] [--trials N]

Every capacity trace in DIR (default `../shared/traces`, the "Can't Be Late" traces in
their public JSON format) is replayed by `respawn simulate --trace` on the e-commerce
workflow (`workflows/ecommerce-sessions.yaml`: 5h15m without losses, a 10 h deadline,
mtti 2h in the file). Each trial starts at its own offset into the trace; a spot request
waits for capacity at most the spot timeout (20m).

The first table gives, per judged trace, the mean cost and the share of deadlines met for
spot with `auto` checkpoints, on-demand, and `market: auto` decided from the file's
exponential model.

The second table is the held-out judgement: for every pair of a planning trace P and a
judged trace J != P, `market: auto` planned with `cluster.interruptions: {trace: P}` and
planned from an exponential model whose mtti is P's mean time between losses, both judged
on J's trials, against the cheaper fixed choice on J that meets the deadline in 99% of
trials (on-demand when spot does not).
"""

import argparse
import glob
import json
import os
import subprocess
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESPAWN = os.path.join(REPO, "target", "release", "respawn")
WORKFLOW = os.path.join(REPO, "workflows", "ecommerce-sessions.yaml")


def rows(workflow, trace, market, trials):
    out = subprocess.run([RESPAWN, "simulate", workflow, "--trace", trace, "--market", market,
                          "--trials", str(trials), "--seed", "1", "--no-history", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    return {p["name"]: p for p in json.loads(out)["policies"]}


def mtti(trace):
    """The trace's mean time between losses while capacity is held (as respawn computes it)."""
    with open(trace) as f:
        data = json.load(f)
    gap, counts = data["metadata"]["gap_seconds"], data["data"]
    held = sum(1 for n in counts if n > 0) * gap
    lost = sum((a - b) / a for a, b in zip(counts, counts[1:]) if b < a)
    return held / lost


def variant(directory, name, text):
    path = os.path.join(directory, name + ".yaml")
    with open(path, "w") as f:
        f.write(text.replace("{{ workflow_dir }}", os.path.join(REPO, "workflows")))
    return path


def short(trace):
    """`preemption_1-node_aws-04-19-2023_us-east-1b_intel_64.json` as `1-node us-east-1b 04-19 intel_64`."""
    parts = os.path.basename(trace)[:-5].split("_")
    return f"{parts[1]} {parts[3]} {parts[2][4:9]} {'_'.join(parts[4:])}"


def fixed_best(spot, on_demand):
    """The cheaper fixed choice that meets the deadline in 99% of trials."""
    if spot["deadline_met_share"] >= 0.99 and spot["mean_cost"] < on_demand["mean_cost"]:
        return spot["mean_cost"]
    return on_demand["mean_cost"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", default=os.path.join(REPO, "..", "shared", "traces"))
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    traces = sorted(glob.glob(os.path.join(args.traces, "*.json")))
    with open(WORKFLOW) as f:
        text = f.read()
    fixed = {}
    print("| judged trace | spot: cost, deadline met | on-demand: cost | auto (file's model): cost, deadline met | auto / best fixed |")
    print("|---|---|---|---|---|")
    for trace in traces:
        spot = rows(WORKFLOW, trace, "spot", args.trials)
        auto = rows(WORKFLOW, trace, "auto", args.trials)["auto"]
        fixed[trace] = (spot["auto"], spot["on-demand"])
        best = fixed_best(*fixed[trace])
        print(f"| {short(trace)} | {spot['auto']['mean_cost']:.2f}, {spot['auto']['deadline_met_share'] * 100:.1f}% "
              f"| {spot['on-demand']['mean_cost']:.2f} | {auto['mean_cost']:.2f}, {auto['deadline_met_share'] * 100:.1f}% "
              f"| {auto['mean_cost'] / best:.2f} |")
    print()
    print("| planned from | judged on | best fixed | auto, trace model: cost, met, ratio | auto, exponential (mtti): cost, met, ratio |")
    print("|---|---|---|---|---|")
    worst = {"trace": (0.0, 1.0), "exponential": (0.0, 1.0)}
    with tempfile.TemporaryDirectory() as directory:
        for plan in traces:
            by_trace = variant(directory, "by-trace", text.replace(
                "  mtti: 2h\n", f"  mtti: 2h\n  interruptions: {{trace: {plan}}}\n"))
            by_mtti = variant(directory, "by-mtti", text.replace(
                "  mtti: 2h\n", f"  mtti: {mtti(plan):.0f}s\n"))
            for judged in traces:
                if judged == plan:
                    continue
                best = fixed_best(*fixed[judged])
                cells = []
                for key, workflow in (("trace", by_trace), ("exponential", by_mtti)):
                    auto = rows(workflow, judged, "auto", args.trials)["auto"]
                    ratio = auto["mean_cost"] / best
                    met = auto["deadline_met_share"]
                    worst[key] = (max(worst[key][0], ratio), min(worst[key][1], met))
                    cells.append(f"{auto['mean_cost']:.2f}, {met * 100:.1f}%, {ratio:.2f}")
                print(f"| {short(plan)} | {short(judged)} | {best:.2f} | {cells[0]} | {cells[1]} |")
    for key, (ratio, met) in worst.items():
        print(f"\nworst over held-out pairs, {key} model: cost {ratio:.2f}x the best fixed choice, "
              f"deadline met in {met * 100:.1f}% of trials")


if __name__ == "__main__":
    main()
