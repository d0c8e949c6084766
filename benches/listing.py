#!/usr/bin/env python3
"""Listing benchmark: 10,000 objects under an S3 prefix, crawled by `etl infer`, through the local
S3 endpoint (moto's server, started here). Reports the median wall time of a crawl, objects per
second, and the HTTP requests it made, counted in the endpoint's own request log.

Usage: python benches/listing.py [--objects 10000] [--runs 5] [--etl target/release/etl]
(run it with a Python that has boto3, e.g. benches/.venv made by harness.py after `pip install boto3`, or .venv made by scripts/test; build with `cargo build --release`).
The layout is Hive-style: 100 `day=` folders of 100 small NDJSON objects each.
"""
import argparse
import collections
import concurrent.futures
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3

# The endpoint colours the log lines of answers other than 200 (a ranged GET's 206 among them).
REQUEST = re.compile(r'"(?:\x1b\[[0-9;]*m)*(GET|PUT|HEAD|POST|DELETE) (\S+) HTTP/1\.[01]')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_endpoint(log_path):
    port = free_port()
    log = open(log_path, "w")
    server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/")
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    server.kill()
    sys.exit("the local S3 endpoint did not start")


def upload(s3, bucket, count):
    folders = max(1, count // 100)
    keys = [f"events/day=2026-{1 + i % 12:02d}-{1 + (i // 12) % 28:02d}x{i}/part-{j:05d}.json"
            for i in range(folders) for j in range(count // folders)]

    def put(key):
        s3.put_object(Bucket=bucket, Key=key, Body=b'{"id": 1, "amount": 2.5, "tag": "x"}\n')

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        list(pool.map(put, keys))
    return len(keys)


def classify(lines):
    kinds = collections.Counter()
    for line in lines:
        match = REQUEST.search(line)
        if not match:
            continue
        method, path = match.groups()
        if method == "GET" and "list-type=2" in path:
            kinds["LIST"] += 1
        elif method == "GET":
            kinds["GET"] += 1
        else:
            kinds[method] += 1
    return kinds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--etl", default="target/release/etl")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        log_path = os.path.join(work, "endpoint.log")
        server, endpoint = start_endpoint(log_path)
        try:
            env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                   "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "ETL_HOME": os.path.join(work, "home")}
            os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket="bench")
            started = time.perf_counter()
            count = upload(s3, "bench", args.objects)
            print(f"uploaded {count} objects in {time.perf_counter() - started:.1f} s")
            walls, cpus, requests = [], [], []
            for run in range(args.runs + 1):
                before = open(log_path).read().count("\n")
                cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                result = subprocess.run([args.etl, "infer", "s3://bench/events/", "--json"], env=env, capture_output=True, text=True)
                wall = time.perf_counter() - started
                cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
                if result.returncode != 0:
                    sys.exit(f"etl infer failed: {result.stderr}")
                time.sleep(0.2)  # let the endpoint flush its log
                lines = open(log_path).read().splitlines()[before:]
                if run == 0:
                    continue  # warm-up
                walls.append(wall)
                cpus.append(cpu)
                requests.append(classify(lines))
            median = statistics.median(walls)
            kinds = requests[walls.index(sorted(walls)[len(walls) // 2])]
            print(f"crawl of {count} objects ({args.runs} runs after a warm-up, local endpoint):")
            print(f"  median wall        {median:.2f} s   (min {min(walls):.2f}, max {max(walls):.2f})")
            print(f"  objects per second {count / median:,.0f}")
            # The endpoint answers one request at a time; etl's own CPU shows what is ours.
            print(f"  etl CPU            {statistics.median(cpus):.2f} s (user + system, median)")
            print(f"  requests           {sum(kinds.values())}: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
        finally:
            server.kill()


if __name__ == "__main__":
    main()
