"""The benchmark suite: every figure tierstream is held to, with its peers measured in the
same run, as medians of several runs; prints them and writes ``bench/RESULTS.md``.

    scripts/bench [--customers 100000] [--days 3] [--ten-day-customers 2500]
                  [--close-customers 100000] [--runs 3]

1. The scoring core alone: validate + apply, events/s.
2. The whole pipeline on a pre-produced backlog of the synthetic bank (100k customers,
   3 business days: 1.36M input events, day closes included): one worker, then two;
   events/s and CPU time per event.
3. The second day close of ``--close-customers`` customers: seconds applying it (and from
   the eod sent), customers/s, changelog records and Redis commands it caused.
4. Latency at a steady 2,000 events/s: input sent -> its tier change read (p50/p99/max).
5. Peers on the same backlog's transactions: a plain Faust agent with defaults and Quix
   Streams 3.28 (RocksDB + changelog), both running a simpler job (one running sum and a
   ladder, ``bench/peers/job.py``).
6. A 10-business-day stream (2,500 customers, ~109k events, 10 closes): one worker and
   Quix, for the ratio with many closes.

Benchmarks print figures; nothing here is asserted. Each worker and peer runs under a timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass
from pathlib import Path

import orjson
from kafka.admin import KafkaAdminClient, NewTopic

from bench import core, store
from bench.pipeline import (
    ROOT,
    Stack,
    changelog_records,
    latency,
    percentiles,
    pipeline,
    produce,
    redis_commands,
    start_worker,
    work_off,
)
from devkit.synthetic import BankConfig, Record, SyntheticBank
from schemas import topics
from streams import kafka_admin
from streams.rules_file import load_rules
from streams.settings import Settings

PEER_TIMEOUT = 600.0


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def core_rate(records: list[Record]) -> float:
    rules = load_rules()
    events = sum(1 for r in records if r.topic is not topics.EOD)
    _, both, _, _ = core.one_run(records, rules)
    return events / both


@dataclass
class CloseRun:
    waited: float  # s, from the eod sent until every partition closed it (the gate's wait included)
    applying: float  # s the worker spent applying the close (its /counters close_seconds)
    cpu: float  # worker CPU seconds meanwhile
    changelog: int  # records the close wrote
    redis: int  # Redis commands it caused


def day_close(stack: Stack, customers: int) -> CloseRun:
    """Close the second business day of ``customers``: a day like any other, one close
    behind every customer (the first close starts every watch and candidacy)."""
    env = stack.env("close")
    settings = Settings.from_env(env)
    kafka_admin.ensure_topics(settings)
    records = list(SyntheticBank(BankConfig(customers=customers, days=2)).records())
    last = max(i for i, r in enumerate(records) if r.topic is topics.EOD)
    business_date = orjson.loads(records[last].value)["business_date"]
    customer, eods = produce(settings, records[:last])
    worker = start_worker(env, stack.workdir / f"{env['TIERSTREAM_APP_ID']}.log")
    try:
        work_off([worker], customer + eods, settings.partitions, timeout=1800)
        time.sleep(1.0)  # let the last table writes and Redis calls land before counting
        log0, redis0 = changelog_records(settings), redis_commands(stack.redis_url)
        applying0, cpu0 = worker.counters()["close_seconds"], worker.cpu()  # type: ignore[index]
        start = time.monotonic()
        kafka_admin.send_eod(settings, business_date)
        work_off([worker], 0, 2 * settings.partitions, timeout=1800)
        waited = time.monotonic() - start
        applying, cpu = worker.counters()["close_seconds"] - applying0, worker.cpu() - cpu0  # type: ignore[index]
        time.sleep(1.0)
        log, commands = changelog_records(settings) - log0, redis_commands(stack.redis_url) - redis0
        return CloseRun(waited, applying, cpu, log, commands)
    finally:
        worker.stop()


def steady_latency(stack: Stack, per_second: float, seconds: float) -> tuple[float, float, float]:
    env = stack.env("latency")
    settings = Settings.from_env(env)
    kafka_admin.ensure_topics(settings)
    worker = start_worker(env, stack.workdir / f"{env['TIERSTREAM_APP_ID']}.log")
    try:
        while worker.counters() is None:
            time.sleep(0.1)
        time.sleep(3.0)  # partitions assigned
        return percentiles(latency(settings, per_second, seconds))
    finally:
        worker.stop()


def peer(stack: Stack, script: str, transactions: list[Record], run: int) -> tuple[float, float]:
    """(events/s, CPU µs per event) of a peer over the transactions."""
    name = f"peer{run}{script.split('_')[0]}-{int(time.time()) % 100000}"
    settings = Settings.from_env(stack.env("peer"))
    admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap)
    # Tansu reports only the configs a topic was created with; Quix reads these two
    retention = {"retention.ms": "604800000", "retention.bytes": "-1"}
    admin.create_topics(
        [NewTopic(f"{name}-in", 8, 1, topic_configs=retention), NewTopic(f"{name}-out", 8, 1, topic_configs=retention)]
    )
    admin.close()
    producer = kafka_admin.producer(settings)
    for r in transactions:
        producer.send(f"{name}-in", key=r.key, value=r.value)
    producer.flush()
    producer.close()
    result = stack.workdir / f"{name}.json"
    state = stack.workdir / name
    state.mkdir()
    with (stack.workdir / f"{name}.log").open("wb") as log:
        argv = [sys.executable, "-m", f"bench.peers.{script}", stack.bootstrap, f"{name}-in", f"{name}-out"]
        argv += [str(len(transactions)), str(result), str(state)]
        proc = subprocess.run(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=PEER_TIMEOUT)
    if not result.exists():
        raise SystemExit(f"{script} ended ({proc.returncode}) without a result; see {stack.workdir / f'{name}.log'}")
    r = json.loads(result.read_text())
    return r["count"] / (r["last"] - r["first"]), r["cpu"] / r["count"] * 1e6


def runs(n: int, label: str, measure: Callable[[int], tuple[float, ...]]) -> list[tuple[float, ...]]:
    out = []
    for i in range(n):
        figures = measure(i)
        print(f"  {label} run {i + 1}: " + ", ".join(f"{x:,.1f}" for x in figures), flush=True)
        out.append(figures)
    return out


def med(results: list[tuple[float, ...]], i: int) -> float:
    return median([r[i] for r in results])


@dataclass
class Stream:
    """A synthetic bank's whole stream, pre-produced as a backlog."""

    customers: int
    days: int

    def __post_init__(self) -> None:
        self.records = list(SyntheticBank(BankConfig(customers=self.customers, days=self.days)).records())
        self.events = sum(1 for r in self.records if r.topic is not topics.EOD)
        self.transactions = [r for r in self.records if r.topic is topics.TRANSACTIONS]

    def describe(self) -> str:
        return (
            f"{self.customers:,} customers × {self.days} business days = {self.events:,} input events "
            f"({len(self.transactions):,} transactions) and {self.days} day closes"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=100_000, help="customers of the backlog")
    ap.add_argument("--days", type=int, default=3, help="business days of the backlog")
    ap.add_argument("--ten-day-customers", type=int, default=2_500, help="customers of the 10-business-day stream")
    ap.add_argument("--close-customers", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=float, default=2000.0, help="events/s of the latency run")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tierbench-"))
    backlog, ten = Stream(args.customers, args.days), Stream(args.ten_day_customers, 10)
    print(f"backlog: {backlog.describe()}; 10-day stream: {ten.describe()}; work dir {workdir}", flush=True)
    stack = Stack(workdir)
    n = args.runs
    try:
        core_r = runs(n, "core (events/s)", lambda i: (core_rate(backlog.records),))
        one = runs(
            n,
            "1 worker (events/s, CPU us/event, peak RSS MiB, held at most)",
            lambda i: pipeline(stack, backlog.records, 1, backlog.days),
        )
        two = runs(
            n,
            "2 workers (events/s, CPU us/event, peak RSS MiB, held at most)",
            lambda i: pipeline(stack, backlog.records, 2, backlog.days),
        )
        close = runs(
            n,
            "close (s from the eod, s applying, CPU s, changelog records, Redis commands)",
            lambda i: astuple(day_close(stack, args.close_customers)),
        )
        lat = runs(
            n, f"latency at {args.rate:,.0f}/s (p50, p99, max ms)", lambda i: steady_latency(stack, args.rate, 10)
        )
        faust = runs(
            n, "Faust peer (events/s, CPU us/event)", lambda i: peer(stack, "faust_peer", backlog.transactions, i)
        )
        quix = runs(
            n, "Quix peer (events/s, CPU us/event)", lambda i: peer(stack, "quix_peer", backlog.transactions, i)
        )
        ten_one = runs(
            n,
            "10-day stream, 1 worker (events/s, CPU us/event, peak RSS MiB, held at most)",
            lambda i: pipeline(stack, ten.records, 1, 10),
        )
        ten_quix = runs(
            n,
            "10-day stream, Quix peer (events/s, CPU us/event)",
            lambda i: peer(stack, "quix_peer", ten.transactions, i),
        )
    finally:
        stack.stop()
    applying = med(close, 1)

    def rate(results: list[tuple[float, ...]]) -> str:
        return f"{med(results, 0):,.0f} events/s ({med(results, 1):,.0f} µs CPU/event)"

    rows = [
        ("scoring core, validate + apply", f"{med(core_r, 0):,.0f} events/s", "≥ 100,000 events/s"),
        ("pipeline, 1 worker, backlog", rate(one), "≥ 25,000 events/s"),
        (
            "pipeline, 2 workers, backlog",
            f"{rate(two)}: {med(two, 1) / med(one, 1):.2f}× the CPU per event of 1 worker",
            "CPU/event within 10 % of 1 worker's",
        ),
        (
            "backlog memory (back-pressure): peak RSS, records held at once",
            f"1 worker {med(one, 2):,.0f} MiB, {med(one, 3):,.0f} held; "
            f"2 workers {med(two, 2):,.0f} MiB each at most, {med(two, 3):,.0f} held",
            "bounded",
        ),
        (
            f"day close, {args.close_customers:,} customers (their second)",
            f"applied in {applying:.1f} s = {args.close_customers / applying:,.0f} customers/s "
            f"({med(close, 2):.1f} s CPU); {med(close, 0):.1f} s from the eod sent (the gate waits for idle "
            f"inputs' watermarks); {med(close, 3):,.0f} changelog records, {med(close, 4):,.0f} Redis commands",
            "≥ 50,000 customers/s",
        ),
        (
            f"latency at {args.rate:,.0f} events/s (each a new customer)",
            f"p50 {med(lat, 0):,.0f} ms, p99 {med(lat, 1):,.0f} ms, max {med(lat, 2):,.0f} ms",
            "p99 ≤ 100 ms",
        ),
        ("peer: plain Faust agent, backlog's transactions, simpler job", rate(faust), ""),
        ("peer: Quix Streams 3.28, backlog's transactions, simpler job", rate(quix), ""),
        ("tierstream / Quix, backlog (1 worker)", f"{med(one, 0) / med(quix, 0):.3f}", ""),
        ("tierstream / Faust peer, backlog (1 worker)", f"{med(one, 0) / med(faust, 0):.2f}", ""),
        ("10-day stream: pipeline, 1 worker", rate(ten_one), ""),
        ("10-day stream: peer Quix Streams 3.28, its transactions", rate(ten_quix), ""),
        ("10-day stream: tierstream / Quix (1 worker)", f"{med(ten_one, 0) / med(ten_quix, 0):.3f}", "≥ 0.4"),
    ]
    table = "| figure | median | target |\n|---|---|---|\n" + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    print(table)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    command = "scripts/bench " + " ".join(sys.argv[1:])
    results_md = ROOT / "bench" / "RESULTS.md"
    old = results_md.read_text() if results_md.exists() else ""
    kept = old[old.index(store.SECTION) :] if store.SECTION in old else ""  # bench/store.py's, run apart
    results_md.write_text(
        f"# Benchmark results\n\nWritten by `{command.strip()}` on {time.strftime('%Y-%m-%d')}: medians of "
        f"{args.runs} runs. Machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"development broker (Tansu, in memory) and a Valkey server on the same machine.\n\n"
        f"Streams: the synthetic bank (`devkit/synthetic.py`), pre-produced as a backlog before the workers "
        f"start. Backlog: {backlog.describe()}. 10-day stream: {ten.describe()}.\n\n{table}\n\n"
        "Peers run a simpler job (a running sum per customer and a ladder on it, `bench/peers/job.py`) over the "
        "same stream's transactions only; tierstream runs the whole contract over every input.\n"
        + (f"\n{kept}" if kept else "")
    )  # fmt: skip
    print(f"written: {ROOT / 'bench' / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
