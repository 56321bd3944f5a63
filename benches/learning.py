#!/usr/bin/env python3
"""Plans learned from the run history against plans made from the true values.

    cargo build --release --bin respawn
    python3 benches/learning.py --runs 10

A diamond of four stages (a -> b, c -> d) whose stages sleep and write a known number of
bytes; the workflow file gets each estimate and output size wrong by 2x (half of them too
high, half too low) and an MTTI 6x too optimistic (60s against chaos at mtti=10s). The
workflow runs `--runs` times under `--chaos mtti=10s` on a local cluster with a
local-directory store. Before any run (the file alone) and after runs 1, 3, 5 and 10
it prints:

- the learned estimate and size of each stage against the true ones (`respawn stats`),
  the largest error in percent;
- the learned MTTI against the chaos rate;
- the plan made from the history (`respawn plan`), simulated with the true values (the
  same checkpoints forced per stage, `simulate --mtti 10s --trials 2000`), against the
  plan made from the true values: the ratio of their mean makespans.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESPAWN = os.path.join(REPO, "target", "release", "respawn")

# stage: (needs, seconds, bytes) as they really are.
TRUE = {
    "a": ([], 3.0, 4_000_000),
    "b": (["a"], 6.0, 2_000_000),
    "c": (["a"], 2.0, 8_000_000),
    "d": (["b", "c"], 4.0, 1_000_000),
}
# What the file says: each wrong by 2x, both ways.
FILE_FACTOR = {"a": 2.0, "b": 0.5, "c": 2.0, "d": 0.5}
CHAOS_MTTI = 10.0
FILE_MTTI = 60.0
CHECKED_AFTER = (0, 1, 3, 5, 10)


def workflow(name, seconds, sizes, mtti, forced=None):
    lines = [
        f"name: {name}",
        f"cluster: {{provider: local, market: spot, mtti: {mtti}s, provision_time: 1s, slots: 2}}",
        "checkpoint: {policy: auto, write_throughput: 4MB/s}",
        "stages:",
    ]
    for stage, (needs, true_s, true_b) in TRUE.items():
        run = (
            f"mkdir -p {{{{ output }}}} && head -c {true_b} /dev/zero > {{{{ output }}}}/data"
            f" && sleep {true_s}"
        )
        parts = [f"run: '{run}'", f"estimate: {seconds[stage]:.3f}s", f"output_size: {int(sizes[stage])}B"]
        if needs:
            parts.append(f"needs: [{', '.join(needs)}]")
        if forced and stage in forced:
            parts.append(f"checkpoint: {forced[stage]}")
        lines.append(f"  {stage}: {{{', '.join(parts)}}}")
    return "\n".join(lines) + "\n"


def respawn(*args):
    out = subprocess.run([RESPAWN, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"respawn {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")
    return out.stdout


def mean_makespan(path):
    sim = json.loads(
        respawn("simulate", path, "--no-history", "--mtti", f"{CHAOS_MTTI}s", "--trials", "2000",
                "--seed", "1", "--format", "json")
    )
    return next(p for p in sim["policies"] if p["name"] == "auto")["mean_makespan_s"]


def checkpoints(plan):
    return {s["name"]: ("always" if s["checkpoint"] else "never") for s in plan["stages"] if not s["final"]}


def main():
    global CHAOS_MTTI, FILE_MTTI
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--chaos-mtti", type=float, default=CHAOS_MTTI, help="seconds")
    args = parser.parse_args()
    CHAOS_MTTI, FILE_MTTI = args.chaos_mtti, 6 * args.chaos_mtti
    with tempfile.TemporaryDirectory() as tmp:
        store, scratch = os.path.join(tmp, "store"), os.path.join(tmp, "scratch")
        wrong = os.path.join(tmp, "learning.yaml")
        with open(wrong, "w") as f:
            f.write(workflow(
                "learning",
                {s: t[1] * FILE_FACTOR[s] for s, t in TRUE.items()},
                {s: t[2] * FILE_FACTOR[s] for s, t in TRUE.items()},
                FILE_MTTI,
            ))
        truth = os.path.join(tmp, "truth.yaml")
        with open(truth, "w") as f:
            f.write(workflow("truth", {s: t[1] for s, t in TRUE.items()}, {s: t[2] for s, t in TRUE.items()}, CHAOS_MTTI))
        best = mean_makespan(truth)
        print(f"plan from the true values: mean makespan {best:.2f}s (simulated, mtti {CHAOS_MTTI:.0f}s)")
        print("runs | worst estimate error | worst size error | learned mtti / chaos mtti | makespan of the learned plan / of the true plan")
        for n in range(0, args.runs + 1):
            if n > 0:
                respawn("run", wrong, "--store", store, "--scratch", scratch, "--batch", f"b{n}",
                        "--chaos", f"mtti={CHAOS_MTTI:.0f}s,seed={n}", "--format", "json")
            if n not in CHECKED_AFTER and n != args.runs:
                continue
            if n == 0:
                os.makedirs(store, exist_ok=True)
            stats = json.loads(respawn("stats", wrong, "--store", store, "--format", "json"))
            est_err = max(abs(s["estimate"]["planned_s"] / TRUE[s["stage"]][1] - 1) for s in stats["stages"])
            size_err = max(abs(s["output_size"]["planned_bytes"] / TRUE[s["stage"]][2] - 1) for s in stats["stages"])
            mtti_ratio = stats["interruptions"]["mtti_s"] / CHAOS_MTTI
            plan = json.loads(respawn("plan", wrong, "--store", store, "--format", "json"))
            forced = os.path.join(tmp, f"forced-{n}.yaml")
            with open(forced, "w") as f:
                f.write(workflow("forced", {s: t[1] for s, t in TRUE.items()}, {s: t[2] for s, t in TRUE.items()},
                                 CHAOS_MTTI, checkpoints(plan)))
            ratio = mean_makespan(forced) / best
            print(f"{n:4} | {est_err * 100:19.1f}% | {size_err * 100:15.1f}% | {mtti_ratio:25.2f} | {ratio:.3f}"
                  f"  (checkpoints {','.join(k for k, v in checkpoints(plan).items() if v == 'always') or 'none'})")


if __name__ == "__main__":
    main()
