#!/usr/bin/env python3
"""Losing half the worker nodes of a Spark cluster in the middle of a stage.

    python3 benches/spark_nodes.py [--events N] [--repeats R] [--spark-home DIR]

Issue 28 asks how long a Spark stage takes when half the task nodes are reclaimed while it
runs, against the same stage without the loss. Local mode has no nodes to lose, so this
starts a Spark standalone cluster from the pyspark package itself (`spark-class` with the
Master and Worker classes): a master and two workers of one core each on loopback. The
driver runs in client mode beside them, as it runs on an on-demand core node of an EMR
cluster with spot task nodes (respawn's YARN setting keeps application masters there).

The job is `examples/spark/sessions.py` (a group-by with a shuffle) over events made once by
`examples/spark/ingest.py`. Each repeat runs it three ways, with the Spark settings respawn
gives a cluster with a task fleet (`spark.decommission.enabled`, block migration):

- `clean`: no loss;
- `decommissioned`: half way through (at half the clean run's median time), one of the
  two workers is told to decommission (SIGPWR, what a node gets when YARN or EMR
  decommissions it on EC2's warning) and a new worker is started in its place (EMR
  replaces reclaimed capacity);
- `killed`: the same, but the worker and its executor are killed outright (SIGKILL, a
  loss without warning).

It prints each run's wall time, its exit status (0: nothing would be charged to a stage's
retries) and whether its output has the clean run's rows, and the medians' ratios.
"""

import argparse
import glob
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.expanduser("~/.cache/respawn-test/spark")
SETTINGS = [
    "spark.decommission.enabled=true",
    "spark.storage.decommission.enabled=true",
    "spark.storage.decommission.shuffleBlocks.enabled=true",
    "spark.storage.decommission.rddBlocks.enabled=true",
    "spark.executor.cores=1",
    "spark.executor.memory=700m",
    "spark.sql.shuffle.partitions=16",
    "spark.ui.enabled=false",
]


def spark_bin(home, name):
    return os.path.join(home, "bin", name)


def environment(home):
    """pyspark's scripts find Spark with the `python3` first on the PATH: the venv's."""
    return dict(os.environ, PATH=os.path.join(home, "bin") + os.pathsep + os.environ.get("PATH", ""),
                SPARK_LOCAL_IP="127.0.0.1")


class Cluster:
    """A standalone master and workers on loopback, each worker in its own process group."""

    def __init__(self, home, root):
        self.home, self.root, self.workers = home, root, []
        pyspark = glob.glob(os.path.join(os.path.dirname(os.path.dirname(spark_bin(home, "x"))),
                                         "lib", "python3*", "site-packages", "pyspark"))[0]
        # Workers decommission on SIGPWR only with decommissioning on in their own conf.
        self.env = dict(environment(home), SPARK_HOME=pyspark,
                        SPARK_WORKER_OPTS="-Dspark.decommission.enabled=true")
        self.env.setdefault("PYSPARK_PYTHON", sys.executable)
        self.master = self.start("org.apache.spark.deploy.master.Master",
                                 ["--host", "127.0.0.1", "--port", "7177", "--webui-port", "8180"], "master")
        time.sleep(4)
        for _ in range(2):
            self.add_worker()

    def start(self, cls, args, name):
        log = open(os.path.join(self.root, f"{name}.log"), "w")
        return subprocess.Popen([spark_bin(self.home, "spark-class"), cls, *args], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def add_worker(self):
        n = len(self.workers)
        work = os.path.join(self.root, f"worker{n}")
        os.makedirs(work, exist_ok=True)
        worker = self.start("org.apache.spark.deploy.worker.Worker",
                            ["spark://127.0.0.1:7177", "--cores", "1", "--memory", "800m",
                             "--work-dir", work, "--webui-port", str(8181 + n)], f"worker{n}")
        self.workers.append(worker)
        return worker

    def lose(self, worker, how):
        """Decommissions (SIGPWR to the worker) or kills (SIGKILL to its process group)."""
        if how == "decommissioned":
            worker.send_signal(signal.SIGPWR)
        else:
            os.killpg(worker.pid, signal.SIGKILL)

    def stop(self):
        for p in [*self.workers, self.master]:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def rows(folder):
    lines = []
    for part in sorted(glob.glob(os.path.join(folder, "part-*"))):
        with open(part) as f:
            lines.extend(f.read().splitlines()[1:])
    return sorted(lines)


def run_job(home, events, out, env):
    args = [spark_bin(home, "spark-submit"), "--master", "spark://127.0.0.1:7177"]
    for setting in SETTINGS:
        args += ["--conf", setting]
    args += [os.path.join(REPO, "examples", "spark", "sessions.py"), "--in", events, "--out", out]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def one(home, root, events, how, at):
    cluster = Cluster(home, tempfile.mkdtemp(dir=root))
    out = tempfile.mkdtemp(dir=root)
    shutil.rmtree(out)
    try:
        time.sleep(6)  # the workers register
        start = time.monotonic()
        job = run_job(home, events, out, cluster.env)
        if how != "clean":
            time.sleep(at)
            cluster.lose(cluster.workers[1], how)
            cluster.add_worker()
        _, err = job.communicate()
        seconds = time.monotonic() - start
        return seconds, job.returncode, (rows(out) if job.returncode == 0 else None), err
    finally:
        cluster.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=4_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spark-home", default=VENV)
    args = parser.parse_args()
    home = args.spark_home
    root = tempfile.mkdtemp(prefix="spark-nodes-")
    events = os.path.join(root, "events")
    subprocess.run([spark_bin(home, "spark-submit"), "--master", "local[2]",
                    os.path.join(REPO, "examples", "spark", "ingest.py"), "--out", events,
                    "--events", str(args.events), "--files", "16"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment(home))
    times = {"clean": [], "decommissioned": [], "killed": []}
    reference = None
    print("| run | how | seconds | exit | rows as the clean run's | driver log lines on lost or decommissioned executors |")
    print("|---|---|---|---|---|---|")
    for repeat in range(args.repeats):
        for how in times:
            at = statistics.median(times["clean"]) / 2 if times["clean"] else 0
            seconds, code, got, err = one(home, root, events, how, at)
            if how == "clean" and reference is None:
                reference = got
            same = got is not None and got == reference
            times[how].append(seconds)
            lost = sum(1 for line in err.splitlines()
                       if "Lost executor" in line or "ecommission" in line)
            print(f"| {repeat + 1} | {how} | {seconds:.1f} | {code} | {'yes' if same else 'NO'} | {lost} |",
                  flush=True)
            if code != 0:
                print(err[-2000:], file=sys.stderr)
    clean = statistics.median(times["clean"])
    for how in ("decommissioned", "killed"):
        print(f"\n{how}: median {statistics.median(times[how]):.1f} s, "
              f"{statistics.median(times[how]) / clean:.2f}x the clean median {clean:.1f} s")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
