#!/usr/bin/env python3
"""`schedule.publish_by` in the simulator: the share of dates published on time, and the
saving against all on-demand, at MTTI 2h.

A date's run starts when its tick takes it, `--delay` after its interval ends, so a
publish-by window W leaves the run W - delay: that is the deadline the run plans against
(the fallback rule and `market: auto`). For each workflow and window, `respawn simulate
--mtti 2h --format json` on one seed gives, for its `auto` checkpoint policy:

- spot, no publish-by: what a date's run did before publish_by (spot, the file's own
  fallback rules only); the simulator counts an on-time share only against a deadline
  the run plans with, so this column gives its 95th-percentile makespan against the
  window instead;
- spot + publish-by: spot, falling back to on-demand after a loss when the window is at
  risk (`--deadline`);
- auto + publish-by: `market: auto` choosing the market against the window.

Each row: the share of trials published within the window, and the mean cost's saving
against all on-demand (negative: dearer).

    cargo build --release --bin respawn
    python3 benches/publish_by.py [--trials 2000] [--delay 5m]
"""
import argparse
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESPAWN = os.path.join(REPO, "target", "release", "respawn")
# (workflow, windows in hours after the interval ends)
CASES = [("spark-chain", [11, 12, 14, 18]), ("wide-dag", [8, 9, 10, 14])]


def simulate(workflow, market, trials, deadline_s=None):
    command = [RESPAWN, "simulate", os.path.join(REPO, "workflows", workflow + ".yaml"),
               "--mtti", "2h", "--market", market, "--trials", str(trials), "--no-history",
               "--format", "json"]
    if deadline_s is not None:
        command += ["--deadline", f"{int(deadline_s)}s"]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def auto_row(report):
    return next(p for p in report["policies"] if p["name"] == "auto")


def seconds(text):
    value, unit = float(text[:-1]), text[-1]
    return value * {"s": 1, "m": 60, "h": 3600}[unit]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--delay", default="5m", help="from the interval's end to the run's start")
    args = parser.parse_args()
    if not os.path.exists(RESPAWN):
        sys.exit(f"missing {RESPAWN}: run `cargo build --release --bin respawn` first")
    delay = seconds(args.delay)
    print("| workflow | window | spot, no publish-by: p95 makespan, saving | spot + publish-by: on time, saving | auto + publish-by: on time, saving (chose) |")
    print("|---|---|---|---|---|")
    for workflow, windows in CASES:
        for hours in windows:
            deadline = hours * 3600 - delay
            free = auto_row(simulate(workflow, "spot", args.trials))
            spot = auto_row(simulate(workflow, "spot", args.trials, deadline))
            auto_report = simulate(workflow, "auto", args.trials, deadline)
            auto = auto_row(auto_report)
            chose = (auto_report.get("market_choice") or {}).get("market", "?")
            p95 = (free["p95_makespan_s"] + delay) / 3600
            print(f"| {workflow} | {hours}h | {p95:.1f}h, {free['saving_percent']:+.1f}% "
                  f"| {fmt_share(spot['deadline_met_share'])}, {spot['saving_percent']:+.1f}% "
                  f"| {fmt_share(auto['deadline_met_share'])}, {auto['saving_percent']:+.1f}% ({chose}) |")


def fmt_share(share):
    return "-" if share is None else f"{share * 100:.1f}%"


if __name__ == "__main__":
    main()
