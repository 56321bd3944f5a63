#!/usr/bin/env python3
"""Checks and alerts end to end: workflows/orders-daily.yaml over 30 dates, 3 of them
with bad data, every date run under chaos; then the data fixed and the failed dates
backfilled.

    cargo build --release --bin respawn
    python3 benches/checks.py [--mtti 2s]

Each date runs with `respawn run --batch DATE --chaos mtti=M,seed=N,provision=0s` (the
stages sleep half a second first, so that losses land in them and in their checks); the
alerts go to a command that stamps when it got each one. Printed: the dates published,
the dates refused, the interruptions, the `check-failed` alerts per date and how long
after the check's event each reached the command; then, after the bad dates' data is
fixed and `respawn backfill --reprocess failed` ran, the same for `recovered`.
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESPAWN = os.path.join(REPO, "target", "release", "respawn")
DATES = [f"2026-11-{d:02d}" for d in range(1, 31)]
BAD = ["2026-11-04", "2026-11-17", "2026-11-25"]
STAMP = ("python3 -c 'import json,sys,time; a=json.load(sys.stdin); a[\"received\"]=time.time(); "
         "print(json.dumps(a))' >> alerts.jsonl")


def land(directory, date, bad):
    """The day's orders as bronze would make them, with one amount negative when bad."""
    out = os.path.join(directory, "made", date)
    subprocess.run([sys.executable, os.path.join(REPO, "examples", "stages", "orders.py"), "bronze",
                    "--date", date, "--out", out], check=True)
    with open(os.path.join(out, "orders.csv")) as f:
        lines = f.read().splitlines()
    if bad:
        fields = lines[5].split(",")
        fields[2] = "-" + fields[2]
        lines[5] = ",".join(fields)
    os.makedirs(os.path.join(directory, "landing"), exist_ok=True)
    with open(os.path.join(directory, "landing", f"{date}.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")


def workflow(directory):
    with open(os.path.join(REPO, "workflows", "orders-daily.yaml")) as f:
        text = f.read()
    text = text.replace("{{ workflow_dir }}/../examples", os.path.join(REPO, "examples"))
    text = text.replace("    run: python3", "    run: sleep 0.5; python3")
    start = text.index("  - command:")
    end = text.index("\n", text.index("    on:", start))
    text = text[:start] + f"  - command: {STAMP}\n    on: [check-failed, recovered]" + text[end:]
    path = os.path.join(directory, "orders.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def alerts(directory, kind):
    path = os.path.join(directory, "alerts.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        found = [json.loads(line) for line in f if line.strip()]
    return [a for a in found if a["event"] == kind]


def published(store):
    root = os.path.join(store, "orders-daily", "outputs", "gold")
    return sorted(d for d in os.listdir(root)) if os.path.isdir(root) else []


def latency(alert):
    at = datetime.datetime.fromisoformat(alert["at"].replace("Z", "+00:00")).timestamp()
    return alert["received"] - at


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mtti", default="2s")
    parser.add_argument("--respawn", default=None, help="the binary (default target/release/respawn)")
    args = parser.parse_args()
    global RESPAWN
    RESPAWN = args.respawn or RESPAWN
    if not os.path.exists(RESPAWN):
        sys.exit(f"missing {RESPAWN}: run `cargo build --release --bin respawn` first")
    directory = tempfile.mkdtemp(prefix="respawn-checks-")
    try:
        for date in DATES:
            land(directory, date, date in BAD)
        path = workflow(directory)
        store, scratch = os.path.join(directory, "store"), os.path.join(directory, "scratch")
        interruptions, failed = 0, []
        for seed, date in enumerate(DATES, start=1):
            run = subprocess.run([RESPAWN, "run", path, "--batch", date, "--store", store,
                                  "--scratch", scratch, "--no-history", "--format", "json",
                                  "--chaos", f"mtti={args.mtti},seed={seed},provision=0s"],
                                 capture_output=True, text=True)
            events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
            interruptions += sum(1 for e in events if e["event"] == "cluster-lost")
            if run.returncode != 0:
                failed.append(date)
        refused = alerts(directory, "check-failed")
        print(f"dates: {len(DATES)}, bad: {len(BAD)}, interruptions: {interruptions}")
        print(f"published: {len(published(store))}, failed: {failed}")
        print(f"bad dates published: {sorted(set(BAD) & set(published(store)))}")
        print(f"check-failed alerts: {sorted(a['batch'] for a in refused)}; "
              f"latest {max(map(latency, refused), default=0):.1f} s after the check")
        for date in BAD:
            land(directory, date, False)
        backfill = subprocess.run([RESPAWN, "backfill", path, "--from", DATES[0], "--to", DATES[-1],
                                   "--reprocess", "failed", "--store", store, "--scratch", scratch,
                                   "--no-history"], capture_output=True, text=True)
        recovered = alerts(directory, "recovered")
        print(f"backfill --reprocess failed: exit {backfill.returncode}; published: {len(published(store))}")
        print(f"recovered alerts: {sorted(a['batch'] for a in recovered)}; "
              f"check-failed alerts now: {len(alerts(directory, 'check-failed'))}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
