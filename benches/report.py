#!/usr/bin/env python3
"""Times `respawn report` of a stored run of 1,000 stages (one attempt each) in a local
store, as tests/report.rs writes it: run record, 2,001 events, the workflow kept with it.

    python3 benches/report.py [path/to/respawn] [runs]
"""
import json, os, subprocess, sys, tempfile, time

respawn = sys.argv[1] if len(sys.argv) > 1 else "target/release/respawn"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
stages = 1000

def stamp(t):
    t = int(t)
    return f"2026-12-01T{t // 3600:02}:{t // 60 % 60:02}:{t % 60:02}Z"

with tempfile.TemporaryDirectory() as root:
    run = os.path.join(root, "wide/runs/run-1000")
    os.makedirs(os.path.join(run, "events"))
    workflow = ["name: wide", "cluster: {provider: local, market: spot, slots: 4}",
                "cost: {spot_per_hour: 1.0, on_demand_per_hour: 3.0}", "stages:"]
    events = [{"event": "provision", "generation": 1, "market": "spot", "reason": "start",
               "wait_s": 0.0, "at": stamp(0), "elapsed_s": 0.0},
              {"event": "cluster-ready", "generation": 1, "market": "spot", "provider": "local",
               "cluster": "/tmp/g1", "at": stamp(0), "elapsed_s": 0.0}]
    record_stages = {}
    for i in range(stages):
        name = f"a-stage-with-a-rather-long-name-number-{i:04}"
        workflow.append(f"  {name}: {{run: 'true', estimate: 1m}}")
        record_stages[name] = {"attempts": 1, "state": "done"}
        start = i * 2.0
        events.append({"event": "launch", "stage": name, "attempt": i + 1, "market": "spot",
                       "generation": 1, "log": f"logs/{name}/1.log", "at": stamp(start),
                       "elapsed_s": start})
        events.append({"event": "exit", "stage": name, "attempt": i + 1, "code": 0,
                       "at": stamp(start + 1.5), "elapsed_s": start + 1.5})
    with open(os.path.join(run, "workflow.yaml"), "w") as f:
        f.write("\n".join(workflow) + "\n")
    for seq, event in enumerate(events):
        with open(os.path.join(run, f"events/{seq:010}.json"), "w") as f:
            json.dump(event, f)
    with open(os.path.join(run, "run.json"), "w") as f:
        json.dump({"format": 1, "workflow": "wide", "batch": "b", "run_id": "run-1000",
                   "status": "succeeded", "started_at": stamp(0), "updated_at": stamp(3600),
                   "stages": record_stages}, f)
    out = os.path.join(root, "wide.html")
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        subprocess.run([respawn, "report", "run-1000", "-o", out, "--store", root],
                       check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - begin)
    times.sort()
    print(f"respawn report, {stages} stages: median {times[len(times) // 2]:.3f} s, "
          f"min {times[0]:.3f} s, max {times[-1]:.3f} s over {runs} runs; "
          f"{os.path.getsize(out) / 1e6:.1f} MB of HTML")
