#!/usr/bin/env python3
"""The public spot traces replayed by the simulator: spot, on-demand and `market: auto`.

    cargo build --release --bin respawn
    python3 benches/traces.py [--traces DIR] [--trials N]

Every capacity trace in DIR (default `../shared/traces`, the "Can't Be Late" traces in
their public JSON format) is replayed by `respawn simulate --trace` on the e-commerce
workflow (`workflows/ecommerce-sessions.yaml`: 5h15m without losses, a 10 h deadline,
mtti 2h in the file). Each trial starts at its own offset into the trace. The script
prints, per trace, the mean cost and the share of deadlines met for:

- spot with `auto` checkpoints (`--market spot`, the `auto` row);
- on-demand (the `on-demand` row);
- `market: auto` as `run` decides it (`--market auto`, the `auto` row): from the file's
  exponential model, while the losses come from the trace.

The last column is `market: auto`'s cost over the cheaper of the two fixed choices.
"""

import argparse
import glob
import json
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESPAWN = os.path.join(REPO, "target", "release", "respawn")
WORKFLOW = os.path.join(REPO, "workflows", "ecommerce-sessions.yaml")


def rows(trace, market, trials):
    out = subprocess.run([RESPAWN, "simulate", WORKFLOW, "--trace", trace, "--market", market,
                          "--trials", str(trials), "--seed", "1", "--no-history", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    return {p["name"]: p for p in json.loads(out)["policies"]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", default=os.path.join(REPO, "..", "shared", "traces"))
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    print("| trace | spot: cost, deadline met | on-demand: cost | market: auto: cost, deadline met | auto / best fixed |")
    print("|---|---|---|---|---|")
    for trace in sorted(glob.glob(os.path.join(args.traces, "*.json"))):
        spot = rows(trace, "spot", args.trials)
        auto = rows(trace, "auto", args.trials)["auto"]
        fixed, on_demand = spot["auto"], spot["on-demand"]
        best = min(fixed["mean_cost"], on_demand["mean_cost"])
        print(f"| {os.path.basename(trace)} | {fixed['mean_cost']:.2f}, {fixed['deadline_met_share'] * 100:.1f}% "
              f"| {on_demand['mean_cost']:.2f} | {auto['mean_cost']:.2f}, {auto['deadline_met_share'] * 100:.1f}% "
              f"| {auto['mean_cost'] / best:.2f} |")


if __name__ == "__main__":
    main()
