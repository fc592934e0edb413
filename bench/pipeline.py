"""Benchmark of the whole pipeline (not a test): one worker on the development stack.

    .venv/bin/python bench/pipeline.py [--customers 1000] [--days 5] [--runs 3]

1. Throughput: a backlog of synthetic events is produced first, then a worker is started
   and timed until it has processed all of them (events/s per worker, median of runs).
2. Latency: with the worker caught up, single balance events for new customers are sent
   at a steady rate; each one makes an initial tier change. Latency = time the change is
   read from the tier-changes topic - time its input was sent (p50/p99).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import orjson
from kafka import KafkaConsumer

from devkit import devstack
from devkit.synthetic import BankConfig, SyntheticBank
from schemas import topics
from streams import kafka_admin
from streams.settings import Settings
from streams.web import free_port


def start_worker(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "WARNING"],
        env={**env, "TIERSTREAM_WEB_PORT": str(port)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, port


def records_in(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/counters", timeout=2) as r:
            return int(json.loads(r.read())["records_in"])
    except OSError:
        return -1


def one_run(
    broker: str, redis_url: str, customers: int, days: int, tag: str, workdir: Path
) -> tuple[float, list[float]]:
    env = {
        **os.environ,
        "TIERSTREAM_BROKER": broker,
        "TIERSTREAM_BROKER_FLAVOR": "tansu",
        "TIERSTREAM_REDIS_URL": redis_url,
        "TIERSTREAM_TOPIC_PREFIX": f"bench{tag}-",
        "TIERSTREAM_APP_ID": f"bench{tag}",
        "TIERSTREAM_REDIS_PREFIX": f"bench{tag}:",
        "TIERSTREAM_PARTITIONS": "8",
        "TIERSTREAM_DATA_DIR": str(workdir / tag),
    }
    settings = Settings.from_env(env)
    kafka_admin.ensure_topics(settings)
    producer = kafka_admin.producer(settings)
    backlog = [
        r for r in SyntheticBank(BankConfig(customers=customers, days=days)).records() if r.topic is not topics.EOD
    ]
    for r in backlog:
        producer.send(r.topic.full_name(settings.topic_prefix), key=r.key, value=r.value)
    producer.flush()
    proc, port = start_worker(env, workdir / f"{tag}.log")
    try:
        while records_in(port) < 0:  # web server up
            time.sleep(0.05)
        start = None
        while True:
            n = records_in(port)
            if start is None and n > 0:
                start, first = time.monotonic(), n
            if n >= len(backlog):
                break
            if proc.poll() is not None:
                raise SystemExit(f"worker died, see {workdir / f'{tag}.log'}")
            time.sleep(0.05)
        assert start is not None
        rate = (len(backlog) - first) / (time.monotonic() - start)
        latencies = measure_latency(settings, producer)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        producer.close()
    return rate, latencies


def measure_latency(settings: Settings, producer: object, count: int = 400, per_second: float = 100.0) -> list[float]:
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    consumer = KafkaConsumer(
        topics.TIER_CHANGES.full_name(settings.topic_prefix),
        bootstrap_servers=settings.bootstrap,
        auto_offset_reset="latest",
        group_id=None,
    )
    consumer.poll(timeout_ms=1000)  # join and position at the end before sending

    def read() -> None:
        deadline = time.monotonic() + 60
        while len(got) < count and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=100).values():
                now = time.time()
                for r in recs:
                    got.setdefault(orjson.loads(r.value)["customer_id"], now)

    reader = threading.Thread(target=read)
    reader.start()
    name = topics.BALANCES.full_name(settings.topic_prefix)
    for i in range(count):
        cid = f"LAT{i:05d}"
        value = {
            "event_id": f"lat{i}",
            "customer_id": cid,
            "account_id": "a",
            "ts": "2026-11-24T10:00:00Z",
            "product": "savings",
            "balance": "1000.00",
            "currency": "CNY",
        }
        sent[cid] = time.time()
        producer.send(name, key=cid.encode(), value=orjson.dumps(value))  # type: ignore[attr-defined]
        producer.flush()  # type: ignore[attr-defined]
        time.sleep(1 / per_second)
    reader.join()
    consumer.close()
    return [(got[c] - sent[c]) * 1000 for c in sent if c in got]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--days", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tierbench-"))
    broker = devstack.start_tansu(workdir)
    redis = devstack.start_valkey(workdir)
    rates, lats = [], []
    try:
        for run in range(args.runs):
            rate, latencies = one_run(
                f"kafka://127.0.0.1:{broker.port}",
                f"redis://127.0.0.1:{redis.port}/0",
                args.customers,
                args.days,
                f"{run}{int(time.time()) % 100000}",
                workdir,
            )
            rates.append(rate)
            lats.append(latencies)
            qs = statistics.quantiles(latencies, n=100)
            print(
                f"run {run + 1}: {rate:,.0f} events/s; "
                f"latency p50 {qs[49]:.0f} ms p99 {qs[98]:.0f} ms ({len(latencies)} changes)"
            )
    finally:
        broker.stop()
        redis.stop()
    p50 = statistics.median(statistics.quantiles(x, n=100)[49] for x in lats)
    p99 = statistics.median(statistics.quantiles(x, n=100)[98] for x in lats)
    print(
        f"median of {args.runs}: {statistics.median(rates):,.0f} events/s per worker; "
        f"input -> tier change p50 {p50:.0f} ms, p99 {p99:.0f} ms"
    )


if __name__ == "__main__":
    main()
