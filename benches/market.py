#!/usr/bin/env python3
"""`cluster.market: auto` against the two fixed markets, in the simulator.

For each workflow and MTTI, `respawn simulate --format json` is run twice on the same
seed: with `--market spot` (its `auto` row is "all spot, auto checkpoints", the configured
fallback included) and with `--market auto` (its `auto` row chooses the market as `run`
would). The table gives auto's mean cost over the cheaper fixed choice, the share of trials
that met the deadline, and the share of the spot discount kept:
(on-demand cost - auto cost) / (on-demand cost - failure-free spot cost).

"auto / cheaper" compares with the cheaper fixed choice; with a deadline, all spot counts
only when at least 99% of its runs met it (otherwise on-demand is the only fixed choice
that keeps the promise), and "auto / cheaper (any)" compares with the cheaper of the two
whatever their deadlines.

    cargo build --release
    python3 benches/market.py [--trials 2000] [--deadline-factor 2.0]
"""
import argparse
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESPAWN = os.path.join(REPO, "target", "release", "respawn")
WORKFLOWS = ["spark-chain", "ecommerce-sessions", "ecommerce-spark", "wide-dag"]
MTTIS = ["15m", "30m", "1h", "2h", "5h", "10h", "100h", "1000h"]


def simulate(workflow, mtti, market, trials, deadline=None):
    command = [RESPAWN, "simulate", os.path.join(REPO, "workflows", workflow + ".yaml"),
               "--mtti", mtti, "--market", market, "--trials", str(trials), "--format", "json"]
    if deadline:
        command += ["--deadline", deadline]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def row(report, name):
    return next(p for p in report["policies"] if p["name"] == name)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--deadline-factor", type=float, default=2.0,
                        help="deadline = this times the failure-free makespan")
    parser.add_argument("--respawn", default=None, help="the binary (default target/release/respawn)")
    args = parser.parse_args()
    global RESPAWN
    RESPAWN = args.respawn or RESPAWN
    if not os.path.exists(RESPAWN):
        sys.exit(f"missing {RESPAWN}: run `cargo build --release` first")
    worst = 0.0
    worst_any = 0.0
    print("| workflow | MTTI | deadline | chose | auto cost | all spot | all spot met deadline | on-demand | auto / cheaper | auto / cheaper (any) | auto met deadline | discount kept |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for workflow in WORKFLOWS:
        for with_deadline in (False, True):
            for mtti in MTTIS:
                deadline = None
                if with_deadline:
                    base = simulate(workflow, mtti, "on-demand", 1)
                    seconds = int(base["lower_bound_s"] * args.deadline_factor)
                    deadline = f"{seconds}s"
                spot = simulate(workflow, mtti, "spot", args.trials, deadline)
                auto = simulate(workflow, mtti, "auto", args.trials, deadline)
                spot_cost = row(spot, "auto")["mean_cost"]
                od_cost = row(spot, "on-demand")["mean_cost"]
                auto_row = row(auto, "auto")
                spot_met = row(spot, "auto")["deadline_met_share"]
                spot_valid = spot_met is None or spot_met >= 0.99
                cheaper = min(spot_cost, od_cost) if spot_valid else od_cost
                ratio = auto_row["mean_cost"] / cheaper
                ratio_any = auto_row["mean_cost"] / min(spot_cost, od_cost)
                worst = max(worst, ratio)
                worst_any = max(worst_any, ratio_any)
                met = auto_row["deadline_met_share"]
                # The discount: on-demand against a failure-free run on spot.
                free_spot = simulate(workflow, "1000000h", "spot", 1)
                free_cost = row(free_spot, "auto")["mean_cost"]
                discount = od_cost - free_cost
                kept = (od_cost - auto_row["mean_cost"]) / discount if discount > 0 else float("nan")
                chose = (auto.get("market_choice") or {}).get("market", "?")
                def pct(share):
                    return "-" if share is None else f"{share * 100:.1f}%"
                print(f"| {workflow} | {mtti} | {deadline or '-'} | {chose} | {auto_row['mean_cost']:.2f} | "
                      f"{spot_cost:.2f} | {pct(spot_met)} | {od_cost:.2f} | {ratio:.3f} | {ratio_any:.3f} | "
                      f"{pct(met)} | {kept * 100:.0f}% |", flush=True)
    print(f"\nworst auto / cheaper: {worst:.3f}; worst auto / cheaper (any): {worst_any:.3f}")


if __name__ == "__main__":
    main()
