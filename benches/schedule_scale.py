#!/usr/bin/env python3
"""Schedules at scale: what a tick, `batches` and a backfill cost as a schedule ages.

    cargo build --release --bin respawn
    python3 -m pip install luigi          # the peer
    python3 benches/schedule_scale.py --reps 5 --dates 1000

Everything runs against a local-directory store in a temporary directory.

- A minutely schedule (`* * * * *`, UTC) that started five years before a fixed now,
  `catchup: 2`, one trivial stage. The first tick, then idle ticks at the same now, then
  `batches` with its default page. For each: wall time, peak RSS (GNU time) and the
  store's files opened (strace, `openat` under the store's root: what a request is for
  the local store).
- The peer for an idle pass: Luigi's `RangeByMinutes` over the same kind of task (a
  `LocalTarget` per minute, all present), with its default window of one day back: how
  long Luigi takes to decide there is nothing to do.
- A backfill of `--dates` hourly dates: its throughput in each quarter of the dates (from
  the time each date's outcome line arrives) and its peak RSS.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESPAWN = os.path.join(REPO, "target", "release", "respawn")
NOW = "2026-12-01T10:00:30Z"

MINUTELY = """\
name: minutely
cluster: { provider: local, market: on-demand }
schedule:
  cron: "* * * * *"
  timezone: UTC
  start: 2021-12-01
  catchup: 2
stages:
  load:
    run: mkdir -p {{ output }} && echo {{ batch }} > {{ output }}/minute
    estimate: 1s
"""

HOURLY = """\
name: hourly
cluster: { provider: local, market: on-demand }
schedule:
  cron: "0 * * * *"
  timezone: UTC
  start: 2020-01-01
  catchup: 1
  max_active: 4
stages:
  load:
    run: mkdir -p {{ output }} && echo {{ batch }} > {{ output }}/hour
    estimate: 1s
"""

LUIGI_TASK = """\
import luigi
from luigi.tools.range import RangeByMinutes

ROOT = {root!r}

class Minute(luigi.ExternalTask):
    date_minute = luigi.DateMinuteParameter()

    def output(self):
        return luigi.LocalTarget(f"{{ROOT}}/{{self.date_minute:%Y-%m-%dT%H%M}}")
"""


def timed(args, cwd, store=None):
    """Runs a command under GNU time (and strace when `store` is given): seconds, peak RSS
    in MiB, files opened under `store`, and stdout."""
    command = ["/usr/bin/time", "-f", "%M"]
    trace = None
    if store:
        trace = os.path.join(cwd, "strace.out")
        command += ["strace", "-f", "-qq", "-e", "trace=openat", "-o", trace]
    start = time.monotonic()
    done = subprocess.run(command + args, cwd=cwd, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    rss = int(done.stderr.strip().splitlines()[-1]) / 1024
    opened = None
    if trace:
        with open(trace) as f:
            opened = sum(1 for line in f if store in line and "ENOENT" not in line)
    return seconds, rss, opened, done.stdout


def count_objects(root):
    return sum(len(files) for _, _, files in os.walk(root))


def minutely(reps, work):
    store = os.path.join(work, "store")
    with open(os.path.join(work, "minutely.yaml"), "w") as f:
        f.write(MINUTELY)
    tick = [RESPAWN, "tick", "minutely.yaml", "--now", NOW, "--store", store]
    first = timed(tick, work, store)
    rows = [("first tick (2 dates run, the rest one missed range)", [first], count_objects(store))]
    idle = [timed(tick, work, store) for _ in range(reps)]
    assert "0 due date(s) to act on" in idle[0][3], idle[0][3]
    rows.append(("idle tick", idle, count_objects(store)))
    batches = [RESPAWN, "batches", "minutely.yaml", "--now", NOW, "--store", store]
    rows.append(("batches (a page of 100)", [timed(batches, work, store) for _ in range(reps)], None))
    later = tick[:4] + ["2026-12-01T10:01:30Z", "--store", store]
    rows.append(("tick a minute later (1 date runs)", [timed(later, work, store)], count_objects(store)))
    return rows


def luigi_peer(reps, work):
    root = os.path.join(work, "luigi-outputs")
    os.makedirs(root)
    # Every minute of the day before NOW is present: nothing to do.
    end = time.mktime(time.strptime("2026-12-01T10:00", "%Y-%m-%dT%H:%M")) - time.timezone
    for minute in range(24 * 60 + 1):
        stamp = time.strftime("%Y-%m-%dT%H%M", time.gmtime(end - 60 * minute))
        open(os.path.join(root, stamp), "w").close()
    with open(os.path.join(work, "minute_task.py"), "w") as f:
        f.write(LUIGI_TASK.format(root=root))
    command = [
        sys.executable, "-m", "luigi", "--module", "minute_task", "RangeByMinutes",
        "--of", "Minute", "--minutes-interval", "1", "--now", str(int(end)),
        "--start", "2021-12-01T0000",
        "--local-scheduler", "--no-lock",
    ]
    env = dict(os.environ, PYTHONPATH=work)
    runs = []
    for _ in range(reps):
        start = time.monotonic()
        done = subprocess.run(["/usr/bin/time", "-f", "%M"] + command, cwd=work, env=env,
                              capture_output=True, text=True)
        seconds = time.monotonic() - start
        said = done.stdout + done.stderr
        if done.returncode != 0 or "looks :)" not in said or "1440" not in said:
            sys.exit(f"luigi failed:\n{done.stdout}\n{done.stderr}")
        rss = int(done.stderr.strip().splitlines()[-1]) / 1024
        runs.append((seconds, rss, None, done.stdout))
    return runs


def backfill(dates, work):
    store = os.path.join(work, "store")
    with open(os.path.join(work, "hourly.yaml"), "w") as f:
        f.write(HOURLY)
    last = time.strftime("%Y-%m-%dT%H", time.gmtime(1577836800 + 3600 * (dates - 1)))
    command = ["/usr/bin/time", "-f", "%M", RESPAWN, "backfill", "hourly.yaml", "--from",
               "2020-01-01T00", "--to", last, "--format", "json", "--store", store]
    start = time.monotonic()
    child = subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=dict(os.environ, RESPAWN_SCRATCH=os.path.join(work, "scratch")))
    ended = []
    for line in child.stdout:
        if '"outcome"' in line:
            ended.append(time.monotonic() - start)
    stderr = child.stderr.read()
    if child.wait() != 0 or len(ended) != dates:
        sys.exit(f"backfill failed ({len(ended)} of {dates} ended):\n{stderr[-2000:]}")
    rss = int(stderr.strip().splitlines()[-1]) / 1024
    quarter = dates // 4
    rates = []
    for q in range(4):
        begin = ended[q * quarter - 1] if q else 0.0
        rates.append(quarter / (ended[(q + 1) * quarter - 1] - begin))
    return ended[-1], rates, rss


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--dates", type=int, default=1000)
    parser.add_argument("--no-luigi", action="store_true")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as work:
        for name, runs, objects in minutely(args.reps, work):
            secs = statistics.median(r[0] for r in runs)
            rss = statistics.median(r[1] for r in runs)
            opened = statistics.median(r[2] for r in runs)
            print(f"| respawn {name} | {secs:.2f} s | {rss:.0f} MiB | {opened:.0f} | {objects or ''} |")
        if not args.no_luigi:
            runs = luigi_peer(args.reps, work)
            print(f"| Luigi RangeByMinutes, one day back, nothing to do | "
                  f"{statistics.median(r[0] for r in runs):.2f} s | "
                  f"{statistics.median(r[1] for r in runs):.0f} MiB | | |")
    with tempfile.TemporaryDirectory() as work:
        total, rates, rss = backfill(args.dates, work)
        print(f"backfill of {args.dates} hourly dates: {total:.1f} s, peak RSS {rss:.0f} MiB, "
              f"dates/s by quarter: {', '.join(f'{r:.1f}' for r in rates)}")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
