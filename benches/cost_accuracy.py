#!/usr/bin/env python3
"""How close `etl cost` comes to the bytes our engine reads when it runs the query.

Makes the data of the integration suite's cost cases (300,000 events over four days, written by
an `etl run` as Parquet partitioned by day, plus a small CSV dimension), then for each query
prints the estimate beside the bytes `--measure` counted, as a Markdown table.

Usage: python3 benches/cost_accuracy.py [--etl target/release/etl]
"""
import argparse
import json
import os
import random
import subprocess
import tempfile

QUERIES = [
    ("projection", "SELECT amount FROM mart.events"),
    ("all columns", "SELECT * FROM mart.events"),
    ("partition filter", "SELECT amount, note FROM mart.events WHERE day = DATE '2026-11-03'"),
    ("row-group filter", "SELECT id FROM mart.events WHERE id < 1000"),
    ("count(*)", "SELECT count(*) FROM mart.events"),
    ("join of two tables",
     "SELECT d.label, sum(e.amount) FROM mart.events e JOIN raw.dim d ON e.category = d.category GROUP BY d.label"),
    ("CSV table", "SELECT count(*) FROM raw.events"),
]


def make_data(root, etl, env):
    rng = random.Random(7)
    os.makedirs(os.path.join(root, "in/events"))
    with open(os.path.join(root, "in/events/events.csv"), "w") as f:
        f.write("id,day,category,amount,note\n")
        for i in range(300_000):
            f.write(f"{i},2026-11-{2 + i // 75_000:02},{rng.choice(['alpha', 'beta', 'gamma', 'delta'])},"
                    f"{rng.randrange(1000)}.{rng.randrange(1000):03},note {rng.getrandbits(30)}\n")
    with open(os.path.join(root, "in/dim.csv"), "w") as f:
        f.write("category,label\nalpha,A\nbeta,B\ngamma,G\ndelta,D\n")
    with open(os.path.join(root, "job.toml"), "w") as f:
        f.write('name = "events"\n[[source]]\ntable = "raw.events"\nlocation = "in/events/"\n'
                '[[target]]\ntable = "mart.events"\nquery = "SELECT * FROM raw.events"\n'
                'location = "out/events/"\npartition_by = ["day"]\n')
    subprocess.run([etl, "run", "job.toml", "-q"], cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([etl, "crawl", "in/dim.csv", "--table", "raw.dim", "-q"], cwd=root, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--etl", default="target/release/etl")
    args = parser.parse_args()
    etl = os.path.abspath(args.etl)
    with tempfile.TemporaryDirectory() as root:
        env = dict(os.environ, ETL_HOME=os.path.join(root, ".etl"))
        make_data(root, etl, env)
        print("| query | estimated bytes | bytes read | read / estimated |")
        print("|---|---:|---:|---:|")
        for name, query in QUERIES:
            out = subprocess.run([etl, "cost", query, "--measure", "--json"], cwd=root, env=env,
                                 check=True, capture_output=True, text=True).stdout
            report = json.loads(out)
            estimate, measured = report["bytes_scanned"], report["measured"]["bytes_read"]
            print(f"| {name}: `{query}` | {estimate:,} | {measured:,} | {measured / estimate:.3f} |")


if __name__ == "__main__":
    main()
