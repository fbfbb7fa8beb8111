#!/usr/bin/env python3
"""Whole-stack pipeline benchmark: starts the single-machine stack exactly as
`lakectl up --headless` does (its own state folder, free ports) and prints
tables.

Bursts (`--bursts`): `lakectl produce` (librdkafka) sends N records as fast
as the broker takes them; drained means every lag 0 and the raw lake, the
derived stream and the warehouse hold every record. Per burst: drain time,
inputs/s, restarts, each process's CPU seconds and share, peak RSS.

Steady rates (`--steady-rates`, `--minutes`): `lakectl produce --rate R` for
M minutes; every 5 s the lags are sampled. Per rate: the largest lag in the
first and in the last minute (bounded when the last is not larger than about
the first), inputs landed in the raw lake in the first minute and in the
last, and, from the landed rows, produce-to-readable latency percentiles:
in the lake, the publication (rename) time of a row's file minus its Kafka
record timestamp; in the warehouse, the `ingestion_time` of a transaction's
`latest_status_par_transaction` row (set in the committing transaction)
minus the record timestamp.

With `--api-qps Q` the steady runs also query the API server of the same
stack Q times a second (round robin: a filtered page of the raw lake, a
page of TRANSACTIONS_FLAT, an SQL aggregate, the spent-recently and
top-products metrics, a warehouse page, API 1's products, a search), and
print its latency percentiles and errors per rate.

    cargo build --release -p lakectl
    scripts/bench_pipeline.py [--lakectl target/release/lakectl] [--bursts 10000,50000,200000]
    scripts/bench_pipeline.py --bursts '' --steady-rates 500,1000 --minutes 5
    scripts/bench_pipeline.py --bursts '' --steady-rates 350 --minutes 5 --api-qps 20

Each run starts a fresh stack, so the broker's database starts empty.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

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
            LAKEHOUSE_API_LISTEN=f"127.0.0.1:{free_port()}",
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


API_QUERIES = [
    ("GET", "/api/v2/datasets/transaction_log?page_size=50&payment_method=credit_card&amount_gt=100", None),
    ("GET", "/api/v2/datasets/TRANSACTIONS_FLAT?page_size=100&fields=transaction_id,amount,status", None),
    ("POST", "/api/v2/sql", {"query": "SELECT transaction_type, count(*) AS n, sum(amount) AS total "
                                      "FROM TRANSACTIONS_FLAT GROUP BY transaction_type"}),
    ("GET", "/api/v2/metrics/spent-recently?minutes=5", None),
    ("GET", "/api/v2/metrics/top-products?limit=10", None),
    ("GET", "/api/v2/warehouse/total_par_transaction_type?page_size=20", None),
    ("GET", "/api/v1/products?page=1", None),
    ("GET", "/api/v2/search?q=laptop", None),
]


class ApiLoad:
    """Queries the stack's API `qps` times a second on a thread of its own."""

    def __init__(self, stack, qps):
        self.base = "http://" + stack.env["LAKEHOUSE_API_LISTEN"]
        self.bearer = self.admin_bearer(stack)
        self.qps = qps
        self.latencies = []
        self.errors = 0
        self.error_kinds = {}  # (path, status or exception name) -> count
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def admin_bearer(self, stack):
        added = subprocess.run(
            [stack.lakectl, "user", "add", "bench", "--admin", "--password-stdin"],
            cwd=stack.dir, env=stack.env, input="a long bench passphrase\n",
            capture_output=True, text=True,
        )
        if added.returncode != 0:
            raise SystemExit(added.stderr)
        token = self.call("POST", "/api/token", {"username": "bench", "password": "a long bench passphrase"}, None)
        return "Bearer " + token["access_token"]

    def call(self, method, path, body, bearer):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if bearer:
            request.add_header("Authorization", bearer)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"{}")

    def run(self):
        i = 0
        interval = 1.0 / self.qps
        next_at = time.time()
        while not self.stop.is_set():
            method, path, body = API_QUERIES[i % len(API_QUERIES)]
            i += 1
            started = time.time()
            try:
                self.call(method, path, body, self.bearer)
                self.latencies.append(time.time() - started)
            except urllib.error.HTTPError as e:
                self.errors += 1
                kind = (path.split("?")[0], e.code)
                self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
            except (urllib.error.URLError, OSError, ValueError) as e:
                self.errors += 1
                kind = (path.split("?")[0], type(e).__name__)
                self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
            next_at += interval
            self.stop.wait(max(0.0, next_at - time.time()))

    def finish(self):
        self.stop.set()
        self.thread.join()
        return {"queries": len(self.latencies) + self.errors, "errors": self.errors,
                "error_kinds": self.error_kinds, "latency": percentiles(self.latencies)}


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


def percentiles(values, points=(50, 95, 99)):
    ordered = sorted(values)
    if not ordered:
        return {p: float("nan") for p in points}
    return {p: ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] for p in points}


def lake_latencies(lake_dir):
    """Seconds from each raw record's Kafka timestamp to its file's publication."""
    import duckdb

    files = []
    for root, _, names in os.walk(os.path.join(lake_dir, "transaction_log")):
        files += [os.path.join(root, n) for n in names if n.endswith(".parquet")]
    if not files:
        return [], {}
    # The rename that publishes a file changes its ctime.
    published = {f: os.stat(f).st_ctime for f in files}
    rows = duckdb.sql(
        "SELECT filename, transaction_id, epoch_ms(kafka_timestamp) / 1000.0 "
        f"FROM read_parquet({files!r}, filename = true)"
    ).fetchall()
    produced = {tid: ts for _, tid, ts in rows}
    return [published[f] - ts for f, _, ts in rows], produced


def warehouse_latencies(stack, produced):
    password = open(os.path.join(stack.dir, ".lakehouse", "postgres", "password")).read().strip()
    url = f"postgres://lakehouse:{password}@127.0.0.1:{stack.env['LAKEHOUSE_POSTGRES_PORT']}/lakehouse"
    out = subprocess.run(
        ["psql", url, "-At", "-F", ",", "-c",
         "SELECT transaction_id, extract(epoch FROM ingestion_time) FROM latest_status_par_transaction"],
        capture_output=True, text=True, check=True,
    ).stdout
    latencies = []
    for line in out.splitlines():
        tid, written = line.split(",")
        if tid in produced:
            latencies.append(float(written) - produced[tid])
    return latencies


def steady(lakectl, rate, minutes, api_qps):
    stack = Stack(lakectl)
    try:
        api = ApiLoad(stack, api_qps) if api_qps else None
        cpu0 = {name: cpu_seconds(pid) for name, pid in stack.pids.items()}
        seconds = int(minutes * 60)
        producer = subprocess.Popen(
            [lakectl, "produce", "--rate", str(rate), "--duration", f"{seconds}s", "--threads", "2", "--json"],
            cwd=stack.dir, env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        started = time.time()
        samples = []  # (t, max lag, raw lake rows)
        while producer.poll() is None:
            status = stack.status()
            comps = status.get("components", {})
            lags = [comps.get(c, {}).get("lag") or 0 for c in ("stream_sql", "lake_sink", "table_sink")]
            samples.append((time.time() - started, max(lags), lake_rows(status, "transaction_log")))
            time.sleep(5)
        api_result = api.finish() if api else None
        summary = json.loads(producer.stdout.read() or "{}")
        sent = summary.get("delivered", 0)
        cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in stack.pids.items()}
        elapsed = time.time() - started
        # Then let it drain, for the latencies of every record.
        deadline = time.time() + 600
        while time.time() < deadline:
            status = stack.status()
            if (lake_rows(status, "transaction_log") >= sent
                    and warehouse_rows(status, "latest_status_par_transaction") >= sent):
                break
            time.sleep(2)
        first = [s for s in samples if s[0] <= 60]
        last = [s for s in samples if s[0] >= samples[-1][0] - 60] if samples else []
        landed = lambda window: (window[-1][2] - window[0][2]) / max(1e-9, window[-1][0] - window[0][0])
        lake_lat, produced = lake_latencies(os.path.join(stack.dir, "data_lake"))
        wh_lat = warehouse_latencies(stack, produced)
        return {
            "rate": rate,
            "minutes": minutes,
            "sent": sent,
            "first_max_lag": max((s[1] for s in first), default=0),
            "last_max_lag": max((s[1] for s in last), default=0),
            "first_rate": landed(first) if len(first) > 1 else 0,
            "last_rate": landed(last) if len(last) > 1 else 0,
            "lake": percentiles(lake_lat),
            "warehouse": percentiles(wh_lat),
            "cpu": {k: v / elapsed for k, v in cpu.items()},
            "rss": {name: peak_rss_mib(pid) for name, pid in stack.pids.items()},
            "api": api_result,
        }
    finally:
        stack.down()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lakectl", default=os.path.join(ROOT, "target", "release", "lakectl"))
    parser.add_argument("--bursts", default="10000,50000,200000")
    parser.add_argument("--steady-rates", default="")
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--api-qps", type=float, default=0,
                        help="also query the API this many times a second during the steady runs")
    args = parser.parse_args()
    rates = [int(r) for r in args.steady_rates.split(",") if r]
    if rates:
        runs = [steady(args.lakectl, r, args.minutes, args.api_qps) for r in rates]
        print("| rate/s | minutes | sent | max lag 1st min | max lag last min | landed/s 1st min | landed/s last min | last/first | lake p50/p95/p99 s | warehouse p50/p95/p99 s |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for r in runs:
            ratio = r["last_rate"] / r["first_rate"] if r["first_rate"] else float("nan")
            lake = "/".join(f"{r['lake'][p]:.2f}" for p in (50, 95, 99))
            wh = "/".join(f"{r['warehouse'][p]:.2f}" for p in (50, 95, 99))
            print(f"| {r['rate']} | {r['minutes']:g} | {r['sent']:,} | {r['first_max_lag']:,} | {r['last_max_lag']:,} "
                  f"| {r['first_rate']:,.0f} | {r['last_rate']:,.0f} | {ratio:.2f} | {lake} | {wh} |")
        print()
        print("| rate/s | process | cores used | peak RSS MiB |")
        print("|---:|---|---:|---:|")
        for r in runs:
            for name, share in r["cpu"].items():
                print(f"| {r['rate']} | {name} | {share:.2f} | {r['rss'][name]:.0f} |")
        print()
        if args.api_qps:
            print(f"| rate/s | API queries ({args.api_qps:g}/s asked) | errors | p50 ms | p95 ms | p99 ms |")
            print("|---:|---:|---:|---:|---:|---:|")
            for r in runs:
                a = r["api"]
                lat = "|".join(f" {1000 * a['latency'][p]:.1f} " for p in (50, 95, 99))
                print(f"| {r['rate']} | {a['queries']:,} | {a['errors']} |{lat}|")
            print()
            for r in runs:
                for (path, kind), n in sorted(r["api"]["error_kinds"].items()):
                    print(f"  {r['rate']}/s: {n} x {kind} from {path}")
            print()
    counts = [int(n) for n in args.bursts.split(",") if n]
    if not counts:
        return
    results = [burst(args.lakectl, n) for n in counts]
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
