#!/usr/bin/env python3
"""Whole-stack pipeline benchmark: starts the single-machine stack exactly as
`lakectl up --headless` does (its own state folder, free ports), sends bursts
with `lakectl produce` (librdkafka, as fast as the broker takes them), and
prints a table: drain time and inputs/s per burst, until every lag is 0 and
the raw lake, the derived stream and the warehouse hold every record; each
process's CPU seconds and share, and peak RSS.

    cargo build --release -p lakectl
    scripts/bench_pipeline.py [--lakectl target/release/lakectl] [--bursts 10000,50000,200000]

Each burst runs on a fresh stack, so the broker's database starts empty.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except OSError:
        return 0.0


def peak_rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Stack:
    def __init__(self, lakectl):
        self.lakectl = lakectl
        self.dir = tempfile.mkdtemp(prefix="bench-pipeline-")
        os.chmod(self.dir, 0o755)
        self.env = dict(os.environ)
        self.env.update(
            LAKEHOUSE_KAFKA_PORT=str(free_port()),
            LAKEHOUSE_POSTGRES_PORT=str(free_port()),
            LAKEHOUSE_SQL=os.path.join(ROOT, "producer", "ksql_queries.sql"),
        )
        for key in ("LAKEHOUSE_KAFKA_BOOTSTRAP", "LAKEHOUSE_POSTGRES_URL"):
            self.env.pop(key, None)
        self.up = subprocess.Popen(
            [lakectl, "up", "--headless"],
            cwd=self.dir,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 180
        while True:
            status = self.status()
            comps = status.get("components", {})
            if status.get("stack", {}).get("running") and all(
                comps.get(c, {}).get("state") == "running"
                for c in ("broker", "postgres", "stream_sql", "lake_sink", "table_sink")
            ):
                break
            if time.time() > deadline:
                raise SystemExit(f"stack did not start: {status}")
            time.sleep(0.5)
        self.pids = {
            "broker (Tansu)": comps["broker"]["pid"],
            "postgres": comps["postgres"]["pid"],
            "lakectl up (stream SQL, sinks)": status["stack"]["supervisor_pid"],
        }

    def run(self, *args):
        return subprocess.run(
            [self.lakectl, *args], cwd=self.dir, env=self.env, capture_output=True, text=True
        )

    def status(self):
        out = self.run("status", "--json")
        try:
            return json.loads(out.stdout)
        except json.JSONDecodeError:
            return {}

    def down(self):
        self.run("down")
        self.up.wait(timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)


def lake_rows(status, topic):
    return next((t["rows"] for t in status.get("lake", []) if t["topic"] == topic), 0)


def warehouse_rows(status, table):
    return next((t["rows"] for t in status.get("warehouse", []) if t["table"] == table), 0)


def burst(lakectl, count):
    stack = Stack(lakectl)
    try:
        cpu0 = {name: cpu_seconds(pid) for name, pid in stack.pids.items()}
        started = time.time()
        produced = stack.run("produce", "--count", str(count), "--threads", "2", "--json")
        if produced.returncode != 0:
            raise SystemExit(produced.stderr)
        sent_in = time.time() - started
        restarts = 0
        while True:
            status = stack.status()
            comps = status.get("components", {})
            restarts = sum(comps.get(c, {}).get("restarts") or 0 for c in comps)
            lags = [comps.get(c, {}).get("lag") for c in ("stream_sql", "lake_sink", "table_sink")]
            if (
                lags == [0, 0, 0]
                and lake_rows(status, "transaction_log") >= count
                and lake_rows(status, "TRANSACTIONS_FLAT") >= count
                and warehouse_rows(status, "latest_status_par_transaction") >= count
            ):
                break
            time.sleep(1)
        drained = time.time() - started
        cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in stack.pids.items()}
        rss = {name: peak_rss_mib(pid) for name, pid in stack.pids.items()}
        return {
            "count": count,
            "sent_s": sent_in,
            "drain_s": drained,
            "rate": count / drained,
            "cpu": cpu,
            "rss": rss,
            "restarts": restarts,
            "lake_rows": lake_rows(status, "transaction_log"),
        }
    finally:
        stack.down()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lakectl", default=os.path.join(ROOT, "target", "release", "lakectl"))
    parser.add_argument("--bursts", default="10000,50000,200000")
    args = parser.parse_args()
    results = [burst(args.lakectl, int(n)) for n in args.bursts.split(",")]
    print("| burst | produced in s | drained in s | inputs/s | restarts | raw lake rows |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['count']:,} | {r['sent_s']:.1f} | {r['drain_s']:.1f} | {r['rate']:,.0f} "
            f"| {r['restarts']} | {r['lake_rows']:,} |"
        )
    print()
    print("| burst | process | CPU s | CPU share | peak RSS MiB |")
    print("|---:|---|---:|---:|---:|")
    for r in results:
        total = sum(r["cpu"].values()) or 1.0
        for name, seconds in r["cpu"].items():
            print(
                f"| {r['count']:,} | {name} | {seconds:.1f} | {100 * seconds / total:.0f}% "
                f"| {r['rss'][name]:.0f} |"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
