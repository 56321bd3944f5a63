#!/usr/bin/env python3
"""The learned interruption model judged on the public spot traces: a history written from
the first half of a trace, then `market: auto` planned from it and judged on the second
half of the same trace and on every other trace (other zones and dates).

    cargo build --release --bin respawn
    python3 benches/learned_traces.py [--traces DIR] [--trials N]

For every capacity trace P in DIR (default `../shared/traces`):

1. The history. The first half of P is cut into runs of the e-commerce workflow
   (`workflows/ecommerce-sessions.yaml`, 5h15m without losses), one after the other. Each
   run holds a spot cluster while P has capacity: the cluster ends lost where P drops to
   zero, loses a share of its nodes where P drops by that share, and is let go at the end
   of the run. That is what a run on P's capacity records (`clusters` in its run record);
   the runs are written to the store's `learned.json`, as runs add themselves.
2. The plans. `respawn simulate --market auto` reads that history from the store
   (`--store`) and plans three ways: from the workflow file alone (`--no-history`: mtti
   2h, exponential), from the learned rate (`--mtti` at what `respawn stats` learned:
   exponential), and from the history itself (no flag: the clusters held, replayed as they
   came, once they lost 8 or more).
3. The judgement. Each plan runs 1,000 trials on the judged trace J (`--trace`): the second
   half of P, and every other trace whole. It is compared with the cheaper fixed choice on
   J that meets the deadline in 99% of trials (spot with `auto` checkpoints, or on-demand).
"""

import argparse
import glob
import json
import os
import subprocess
import tempfile

from traces import fixed_best as cheaper_fixed
from traces import short

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESPAWN = os.path.join(REPO, "target", "release", "respawn")
WORKFLOW = os.path.join(REPO, "workflows", "ecommerce-sessions.yaml")
NAME = "ecommerce-sessions"
RUN_SECONDS = 5 * 3600 + 15 * 60


def load(path):
    with open(path) as f:
        data = json.load(f)
    return data["metadata"]["gap_seconds"], data["data"]


def write_trace(path, gap, counts):
    with open(path, "w") as f:
        json.dump({"metadata": {"gap_seconds": gap}, "data": counts}, f)


def held_clusters(gap, counts):
    """The clusters a run holds over `counts`: while capacity is there, lost at a drop to
    zero, node losses at smaller drops, let go at the end."""
    clusters, current = [], None
    for k, n in enumerate(counts):
        if current is None:
            if n > 0:
                current = {"start": k, "top": n, "node_losses": []}
            continue
        before = counts[k - 1]
        if n == 0:
            clusters.append((current, k, True))
            current = None
        elif n < before:
            share = (before - n) / before
            current["node_losses"].append({"after": (k - current["start"]) * gap, "share": share})
    if current is not None:
        clusters.append((current, len(counts), False))
    return [{
        "market": "spot",
        "seconds": (end - c["start"]) * gap,
        "lost": lost,
        "node_losses": c["node_losses"],
    } for c, end, lost in clusters]


def history(gap, counts):
    """Run records of consecutive runs over `counts`, oldest first."""
    per_run = max(1, round(RUN_SECONDS / gap))
    records = []
    for i, start in enumerate(range(0, len(counts), per_run)):
        clusters = held_clusters(gap, counts[start:start + per_run])
        at = f"2026-01-{1 + i // 4:02d}T{(i % 4) * 6:02d}:00:00Z"
        records.append({
            "format": 1, "workflow": NAME, "batch": f"b{i}", "run_id": f"r{i:03d}",
            "status": "succeeded", "started_at": at, "updated_at": at,
            "markets": [], "interruptions": [], "stages": {},
            "cluster_hours": {"spot": sum(c["seconds"] for c in clusters) / 3600},
            "cluster_kind": "local", "clusters": clusters,
        })
    return records


def simulate(judged, trials, extra):
    out = subprocess.run([RESPAWN, "simulate", WORKFLOW, "--trace", judged, "--trials", str(trials),
                          "--seed", "1", "--format", "json"] + extra,
                         capture_output=True, text=True, check=True).stdout
    return {p["name"]: p for p in json.loads(out)["policies"]}


def learned_mtti(store):
    out = subprocess.run([RESPAWN, "stats", WORKFLOW, "--store", store, "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    interruptions = json.loads(out)["interruptions"]
    return interruptions["mtti_s"], interruptions["empirical"], interruptions["losses"]


def fixed_best(trace, trials):
    """The cheaper fixed choice on `trace` that meets the deadline in 99% of trials."""
    policies = simulate(trace, trials, ["--market", "spot", "--no-history"])
    return cheaper_fixed(policies["auto"], policies["on-demand"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", default=os.path.join(REPO, "..", "shared", "traces"))
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    traces = sorted(glob.glob(os.path.join(args.traces, "*.json")))
    models = ["file", "learned rate", "learned history"]
    worst = {m: [0.0, 1.0] for m in models}
    print("| learned from (first half) | losses | judged on | best fixed | "
          + " | ".join(f"auto, {m}: cost, met, ratio" for m in models) + " |")
    print("|---|---|---|---|" + "---|" * len(models))
    with tempfile.TemporaryDirectory() as directory:
        best = {}
        for trace in traces:
            best[trace] = fixed_best(trace, args.trials)
        for plan in traces:
            gap, counts = load(plan)
            half = len(counts) // 2
            later = os.path.join(directory, "later-" + os.path.basename(plan))
            write_trace(later, gap, counts[half:])
            best[later] = fixed_best(later, args.trials)
            store = os.path.join(directory, "store-" + os.path.basename(plan)[:-5])
            os.makedirs(os.path.join(store, NAME))
            with open(os.path.join(store, NAME, "learned.json"), "w") as f:
                json.dump(history(gap, counts[:half]), f)
            mtti, empirical, losses = learned_mtti(store)
            flags = {
                "file": ["--no-history"],
                "learned rate": ["--store", store, "--mtti", f"{mtti:.0f}s"],
                "learned history": ["--store", store],
            }
            for judged in [later] + [t for t in traces if t != plan]:
                cells = []
                for model in models:
                    auto = simulate(judged, args.trials, ["--market", "auto"] + flags[model])["auto"]
                    ratio = auto["mean_cost"] / best[judged]
                    met = auto["deadline_met_share"]
                    worst[model] = [max(worst[model][0], ratio), min(worst[model][1], met)]
                    cells.append(f"{auto['mean_cost']:.2f}, {met * 100:.1f}%, {ratio:.2f}")
                name = "its second half" if judged == later else short(judged)
                print(f"| {short(plan)} | {losses}{'' if empirical else ' (rate only)'} | {name} "
                      f"| {best[judged]:.2f} | " + " | ".join(cells) + " |", flush=True)
    for model, (ratio, met) in worst.items():
        print(f"\nworst over {model}: cost {ratio:.2f}x the best fixed choice, deadline met in {met * 100:.1f}% of trials")


if __name__ == "__main__":
    main()
