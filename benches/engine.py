#!/usr/bin/env python3
"""Engine benchmarks for BENCHMARKS.md.

    cargo build --release --examples
    python3 benches/engine.py [--reps 3] [--only overhead|chain|chaos] [--chaos-runs 40] [--dump DIR] [--dir DIR]

chain (needs `python3 -m pip install luigi`): a chain of 500 stages running `true` on the
local-directory store, against the same 500 commands in a shell loop and against Luigi
(`--local-scheduler --workers 2`, a chain of 500 tasks, each running `sh -c true` and
writing its LocalTarget), all three in the same run, alternated, medians of --reps.

overhead: `respawn run` on 1,000 no-op stages (`true`), as a chain and as a fan-out of
1,000 into 1, with the S3 test server (examples/s3-server.rs) on loopback as the store.
The peer, measured in the same run, is a shell loop that starts the same 1,000 commands
one after the other (`sh -c true`): the cost of the processes alone. The orchestration
overhead per stage is (respawn - peer) / 1,000. Peak memory is the orchestrator's
maximum resident set (wait4's rusage).

chaos: the e-commerce workflow with its estimates replaced by the stage durations measured
in a fault-free run on this machine, run with `--chaos mtti=M` for several seeds; the
mean makespan is compared with `respawn simulate` of the same workflow at the same MTTI
(policy auto, the plan the engine uses).
"""

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESPAWN = os.path.join(REPO, "target", "release", "respawn")
SERVER = os.path.join(REPO, "target", "release", "examples", "s3-server")
BUCKET = "bench"
ENV = {
    "AWS_ACCESS_KEY_ID": "respawn-test-access",
    "AWS_SECRET_ACCESS_KEY": "respawn-test-secret-key",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(argv, env, cwd=None):
    """Runs a command; returns (seconds, peak RSS in MiB, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(argv)}\n{err.decode()}")
    # The largest waited-for descendant: the orchestrator (its stages are `sh -c true`).
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return elapsed, peak, out.decode()


def chain_yaml(n):
    lines = ["name: bench-chain", "cluster: {provider: local, market: on-demand, slots: 4}",
             "checkpoint: {policy: none}", "stages:"]
    for i in range(n):
        lines.append(f"  s{i:04d}:")
        if i:
            lines.append(f"    needs: [s{i - 1:04d}]")
        lines += ["    run: \"true\"", "    estimate: 1s", "    output_size: 1KB"]
    return "\n".join(lines) + "\n"


def fanout_yaml(n):
    lines = ["name: bench-fanout", "cluster: {provider: local, market: on-demand, slots: 4}",
             "checkpoint: {policy: none}", "stages:"]
    for i in range(n):
        lines += [f"  s{i:04d}:", "    run: \"true\"", "    estimate: 1s", "    output_size: 1KB",
]
    lines += ["  sink:", "    needs: [" + ", ".join(f"s{i:04d}" for i in range(n)) + "]",
              "    run: \"true\"", "    estimate: 1s", "    output_size: 1KB"]
    return "\n".join(lines) + "\n"


def peer(n, env):
    script = f"i=0; while [ $i -lt {n} ]; do sh -c true; i=$((i+1)); done"
    return timed(["sh", "-c", script], env)[0]


def overhead(reps, work):
    port = free_port()
    root = os.path.join(work, "s3")
    server = subprocess.Popen([SERVER, "--root", root, "--port", str(port), "--bucket", BUCKET],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    env = dict(os.environ, **ENV, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
               RESPAWN_SCRATCH=os.path.join(work, "scratch"))
    n = 1000
    files = {}
    for name, text in [("chain", chain_yaml(n)), ("fan-out", fanout_yaml(n))]:
        path = os.path.join(work, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(text)
        files[name] = path
    results = {}
    try:
        for rep in range(reps):
            results.setdefault("peer", []).append(peer(n, env))
            for name, path in files.items():
                for store in ["s3", "local"]:
                    url = f"s3://{BUCKET}/r{rep}" if store == "s3" else os.path.join(work, f"local{rep}")
                    seconds, peak, _ = timed(
                        [RESPAWN, "run", path, "--store", url, "--batch", f"b{rep}"], env, cwd=work)
                    results.setdefault((name, store), []).append((seconds, peak))
    finally:
        server.terminate()
        server.wait()
    base = statistics.median(results.pop("peer"))
    print(f"peer: {n} x `sh -c true` in a shell loop: median {base:.2f} s "
          f"({base / n * 1000:.2f} ms per command)")
    print("| workload | store | respawn (median) | per stage | overhead per stage | vs peer | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for (name, store), runs in results.items():
        seconds = statistics.median(r[0] for r in runs)
        peak = max(r[1] for r in runs)
        stages = n + (1 if name == "fan-out" else 0)
        print(f"| {name} of {stages} | {store} | {seconds:.2f} s | {seconds / stages * 1000:.2f} ms "
              f"| {(seconds - base) / stages * 1000:.2f} ms | {seconds / base:.2f}x | {peak:.0f} MiB |")


LUIGI_CHAIN = """
import subprocess
import luigi


class Step(luigi.Task):
    i = luigi.IntParameter()

    def requires(self):
        return Step(i=self.i - 1) if self.i > 0 else []

    def output(self):
        return luigi.LocalTarget(f"out/{self.i:04d}")

    def run(self):
        subprocess.run(["sh", "-c", "true"], check=True)
        with self.output().open("w") as f:
            f.write("done")
"""


def chain(reps, work, n=500):
    found = subprocess.run([sys.executable, "-c", "import luigi; print(luigi.__version__)"],
                           capture_output=True, text=True)
    if found.returncode != 0:
        sys.exit("missing luigi: `python3 -m pip install luigi`")
    path = os.path.join(work, "chain500.yaml")
    with open(path, "w") as f:
        f.write(chain_yaml(n).replace("slots: 4", "slots: 2"))
    with open(os.path.join(work, "luigichain.py"), "w") as f:
        f.write(LUIGI_CHAIN)
    open(os.path.join(work, "luigi.cfg"), "w").close()
    env = dict(os.environ, RESPAWN_SCRATCH=os.path.join(work, "scratch"), PYTHONPATH=work,
               LUIGI_CONFIG_PATH=os.path.join(work, "luigi.cfg"))
    results = {"shell loop": [], "respawn": [], "luigi": []}
    for rep in range(reps):
        results["shell loop"].append(peer(n, env))
        store = os.path.join(work, f"store{rep}")
        results["respawn"].append(timed([RESPAWN, "run", path, "--store", store,
                                         "--batch", f"b{rep}"], env, cwd=work)[0])
        luigi_dir = os.path.join(work, f"luigi{rep}")
        os.makedirs(luigi_dir)
        results["luigi"].append(timed([sys.executable, "-m", "luigi", "--module", "luigichain",
                                       "Step", "--i", str(n - 1), "--local-scheduler",
                                       "--workers", "2"], env, cwd=luigi_dir)[0])
    base = statistics.median(results["shell loop"])
    ours = statistics.median(results["respawn"])
    theirs = statistics.median(results["luigi"])
    print(f"luigi {found.stdout.strip()}; {reps} rounds; load average before: "
          f"{os.getloadavg()[0]:.2f}")
    print("| chain of 500 `true` (local store) | median | per stage | vs shell loop | vs Luigi |")
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        seconds = statistics.median(runs)
        print(f"| {name} | {seconds:.2f} s | {seconds / n * 1000:.2f} ms | {seconds / base:.2f}x "
              f"| {seconds / theirs:.2f}x |")
    print(f"respawn's orchestration overhead per stage: {(ours - base) / n * 1000:.2f} ms")


def durations(events):
    """Per stage: seconds from launch to exit, and (bytes, seconds) of its checkpoint."""
    started = {}
    took = {}
    written = {}
    for e in events:
        if e["event"] == "launch":
            started[e["stage"]] = e["elapsed_s"]
        elif e["event"] == "exit" and e.get("code") == 0:
            took[e["stage"]] = e["elapsed_s"] - started[e["stage"]]
        elif e["event"] == "committed":
            written[e["stage"]] = (e["bytes"], e["seconds"])
    return took, written


def chaos(runs, work, mtti, events_count, dump=None):
    source = open(os.path.join(REPO, "workflows", "ecommerce-sessions.yaml")).read()
    source = source.replace("{{ workflow_dir }}/../examples", os.path.join(REPO, "examples"))
    source = source.replace("provision_time: 10m", "provision_time: 1s")
    source = source.replace("    deadline: 10h\n", "")
    source = source.replace("after_interruptions: 3", "after_interruptions: 1000")
    source = source.replace("--events 200000", f"--events {events_count}")
    # The fault-free runs checkpoint every stage, to measure every output's size.
    base = os.path.join(work, "base.yaml")
    with open(base, "w") as f:
        f.write(source.replace("  policy: auto\n", "  policy: all\n"))
    env = dict(os.environ, RESPAWN_SCRATCH=os.path.join(work, "scratch"))
    measured = []
    for i in range(3):
        _, _, out = timed([RESPAWN, "run", base, "--store", os.path.join(work, "ref"),
                           "--batch", f"ref{i}", "--format", "json"], env, cwd=work)
        measured.append(durations([json.loads(l) for l in out.splitlines()]))
    stage_time = {s: statistics.median(m[0][s] for m in measured) for s in measured[0][0]}
    size = {s: statistics.median(m[1][s][0] for m in measured) for s in measured[0][1]}
    total_bytes = sum(sum(b for b, _ in m[1].values()) for m in measured)
    total_seconds = sum(sum(t for _, t in m[1].values()) for m in measured)
    throughput = max(1, int(total_bytes / max(total_seconds, 1e-3)))
    # The measured durations, sizes and upload speed replace the production figures.
    scaled = source.replace("write_throughput: 200MB/s", f"write_throughput: {throughput}B/s")
    # The engine plans at the workflow's `cluster.mtti`, so the copy says the MTTI the chaos
    # runs inject: the engine and the simulator then plan for the same MTTI.
    scaled = scaled.replace("  mtti: 2h\n", f"  mtti: {mtti}\n")
    for stage, estimate, output_size in [("ingest", "1h30m", "60GB"), ("purchases", "1h", "3GB"),
                                         ("sessions", "2h30m", "1GB"), ("report", "15m", "10MB")]:
        ms = max(1, round(stage_time[stage] * 1000))
        scaled = scaled.replace(f"    estimate: {estimate}\n    output_size: {output_size}\n",
                                f"    estimate: {ms}ms\n    output_size: {int(size[stage])}B\n", 1)
    path = os.path.join(work, "measured.yaml")
    with open(path, "w") as f:
        f.write(scaled)
    plan = json.loads(timed([RESPAWN, "plan", path, "--mtti", mtti, "--format", "json"], env)[2])
    sim = json.loads(timed([RESPAWN, "simulate", path, "--mtti", mtti, "--trials", "20000",
                            "--format", "json"], env)[2])
    predicted = next(p for p in sim["policies"] if p["name"] == "auto")
    makespans = []
    losses = []
    replayed = []
    for seed in range(1, runs + 1):
        _, _, out = timed([RESPAWN, "run", path, "--store", os.path.join(work, f"chaos{seed}"),
                           "--batch", "b", "--format", "json",
                           "--chaos", f"mtti={mtti},seed={seed}"], env, cwd=work)
        events = [json.loads(l) for l in out.splitlines()]
        ready = next(e["elapsed_s"] for e in events if e["event"] == "cluster-ready")
        done = next(e["elapsed_s"] for e in events if e["event"] == "finished")
        makespans.append(done - ready)
        lost_at = [e["elapsed_s"] - ready for e in events if e["event"] == "cluster-lost"]
        losses.append(len(lost_at))
        # The simulator replaying exactly these interruption times: what the model says
        # this very run should have taken.
        trace = os.path.join(work, f"trace{seed}.csv")
        with open(trace, "w") as f:
            f.write("".join(f"{t:.3f}\n" for t in lost_at) or "1000000\n")
        replay = json.loads(timed([RESPAWN, "simulate", path, "--trace", trace, "--trials", "1",
                                   "--format", "json"], env)[2])
        replayed.append(next(p for p in replay["policies"] if p["name"] == "auto")["mean_makespan_s"])
        if dump:
            with open(os.path.join(dump, f"chaos{seed}.jsonl"), "w") as f:
                f.write(out)
        print(f"seed {seed}: {done - ready:.2f} s, {len(lost_at)} losses at "
              f"{', '.join(f'{t:.1f}' for t in lost_at)}; replayed in the simulator {replayed[-1]:.2f} s",
              file=sys.stderr)
    mean = statistics.mean(makespans)
    print("stage durations measured without faults (median of 3):",
          ", ".join(f"{s} {t:.2f}s ({size[s] / 1e6:.1f} MB)" for s, t in stage_time.items()),
          f"; checkpoint writes at {throughput / 1e6:.0f} MB/s")
    print("checkpointed by the plan at this MTTI:",
          ", ".join(s["name"] for s in plan["stages"] if s["checkpoint"]))
    print(f"chaos runs at mtti={mtti}: {runs} seeds, mean makespan {mean:.2f} s "
          f"(median {statistics.median(makespans):.2f} s), mean interruptions {statistics.mean(losses):.2f}")
    print(f"simulator (auto, 20,000 trials): mean makespan {predicted['mean_makespan_s']:.2f} s, "
          f"mean interruptions {predicted['mean_interruptions']:.2f}, lower bound {sim['lower_bound_s']:.2f} s")
    print(f"measured / predicted: {mean / predicted['mean_makespan_s']:.3f}")
    print(f"the simulator replaying each run's own interruption times: mean {statistics.mean(replayed):.2f} s; "
          f"measured / replayed: {mean / statistics.mean(replayed):.3f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", choices=["overhead", "chain", "chaos"])
    parser.add_argument("--chaos-runs", type=int, default=12)
    parser.add_argument("--mtti", default="10s")
    parser.add_argument("--events", type=int, default=2000000)
    parser.add_argument("--dump", help="keep each chaos run's events in this directory")
    parser.add_argument("--dir", help="where the stores, scratch and Luigi's targets go "
                        "(default: the system's temporary directory)")
    args = parser.parse_args()
    for path in [RESPAWN, SERVER]:
        if not os.path.exists(path):
            sys.exit(f"missing {path}: run `cargo build --release --examples` first")
    work = tempfile.mkdtemp(prefix="respawn-engine-bench-", dir=args.dir)
    try:
        if args.only in (None, "overhead"):
            overhead(args.reps, work)
        if args.only in (None, "chain"):
            chain(args.reps, work)
        if args.only in (None, "chaos"):
            chaos(args.chaos_runs, work, args.mtti, args.events, args.dump)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
