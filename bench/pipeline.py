"""The whole pipeline on the development stack, measured from outside (helpers of the suite).

Workers are real ``tierstream worker`` processes; progress is read from their ``/counters``;
CPU time from ``/proc``. Nothing here asserts a figure.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from devkit import devstack
from devkit.synthetic import Record
from schemas import topics
from streams import kafka_admin
from streams.kafka_config import changelog_topic
from streams.settings import Settings
from streams.web import free_port

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    port: int

    def counters(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/counters", timeout=2) as r:
                body: dict[str, Any] = json.loads(r.read())
                return body
        except OSError:
            return None

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


class Stack:
    """A Tansu broker and a Valkey server, new for every measurement (``env``): Tansu keeps
    every topic in memory, and one broker for the whole suite at 100,000 customers grew
    past 10 GB and was killed by the kernel."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._n = 0
        self._start()

    def _start(self) -> None:
        self.broker = devstack.start_tansu(self.workdir)
        self.redis = devstack.start_valkey(self.workdir)
        self.broker_url = f"kafka://127.0.0.1:{self.broker.port}"
        self.bootstrap = f"127.0.0.1:{self.broker.port}"
        self.redis_url = f"redis://127.0.0.1:{self.redis.port}/0"

    def env(self, name: str) -> dict[str, str]:
        """A measurement's settings, on a broker and a Redis of its own."""
        self.stop()
        self._start()
        self._n += 1
        return environment(self.broker_url, self.redis_url, f"b{self._n}{name}", self.workdir)

    def stop(self) -> None:
        self.broker.stop()
        self.redis.stop()


def start_worker(env: dict[str, str], log: Path, loglevel: str = "WARNING") -> Worker:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker", "--loglevel", loglevel],
        env={**env, "TIERSTREAM_WEB_PORT": str(port)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=ROOT,
    )
    return Worker(proc, port)


def environment(broker: str, redis_url: str, tag: str, workdir: Path, partitions: int = 8) -> dict[str, str]:
    return {
        **os.environ,
        "TIERSTREAM_BROKER": broker,
        "TIERSTREAM_BROKER_FLAVOR": "tansu",
        "TIERSTREAM_REDIS_URL": redis_url,
        "TIERSTREAM_TOPIC_PREFIX": f"{tag}-",
        "TIERSTREAM_APP_ID": tag,
        "TIERSTREAM_REDIS_PREFIX": f"{tag}:",
        "TIERSTREAM_PARTITIONS": str(partitions),
        "TIERSTREAM_DATA_DIR": str(workdir / tag),
    }


def produce(settings: Settings, records: Iterable[Record]) -> tuple[int, int]:
    """Send records in order (an eod to every eod partition); (customer records, eod
    records). Every send must be acknowledged: a benchmark that lost some of its input
    would wait for them for ever (a slow broker let a million records expire once)."""
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap,
        linger_ms=5,
        acks="all",
        client_id="tierstream-bench",
        delivery_timeout_ms=3_600_000,  # a broker busy storing millions of records is slow, not gone
    )
    eod_partitions = kafka_admin.partition_counts(settings, [topics.EOD.full_name(settings.topic_prefix)])
    n_eod = next(iter(eod_partitions.values()))
    customer = eods = 0
    failed: list[BaseException] = []
    try:
        for r in records:
            name = r.topic.full_name(settings.topic_prefix)
            if r.topic is topics.EOD:
                for p in range(n_eod):
                    producer.send(name, value=r.value, partition=p).add_errback(failed.append)
                eods += n_eod
            else:
                producer.send(name, key=r.key, value=r.value).add_errback(failed.append)
                customer += 1
        producer.flush()
    finally:
        producer.close()
    if failed:
        raise SystemExit(f"{len(failed):,} records could not be produced, the first: {failed[0]!r}")
    return customer, eods


@dataclass
class Run:
    seconds: float
    records: int
    cpu: float  # CPU seconds of all workers while they worked
    days_closed: int
    peak_rss: float  # MiB, the largest of the workers' peak resident memory
    held_peak: int  # records the workers' gates held at most (summed)

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    @property
    def cpu_us_per_record(self) -> float:
        return self.cpu / self.records * 1e6


def work_off(workers: list[Worker], records: int, closes: int, timeout: float) -> Run:
    """Time the workers from their first processed record until ``records`` are in and
    ``closes`` partition-days are closed."""
    deadline = time.monotonic() + timeout
    start: float | None = None
    cpu0 = 0.0
    while True:
        seen = [w.counters() for w in workers]
        got = sum(c["records_in"] for c in seen if c)
        closed = sum(c["days_closed"] for c in seen if c)
        if start is None and got > 0:
            start, cpu0 = time.monotonic(), sum(w.cpu() for w in workers)
        if got >= records and closed >= closes:
            assert start is not None
            seconds, cpu = time.monotonic() - start, sum(w.cpu() for w in workers) - cpu0
            peak = max(memory(w.proc.pid)[1] for w in workers)
            held = sum(c["held_peak"] for c in seen if c)
            return Run(seconds, records, cpu, closed, peak, held)
        for w in workers:
            if w.proc.poll() is not None:
                raise SystemExit("a worker died; see its log")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {got}/{records} records, {closed}/{closes} closes")
        time.sleep(0.05)


def pipeline(
    stack: Stack, records: Iterable[Record], workers: int, days: int, settings: Mapping[str, str] | None = None
) -> tuple[float, float, float, float]:
    """(events/s, CPU µs per event, peak RSS MiB, records held at most) of ``workers``
    working off the backlog; ``settings``: environment on top of the stack's."""
    env = {**stack.env(f"w{workers}"), **(settings or {})}
    parsed = Settings.from_env(env)
    kafka_admin.ensure_topics(parsed)
    customer, eods = produce(parsed, records)
    procs = [
        start_worker(
            {**env, "TIERSTREAM_DATA_DIR": str(parsed.data_dir / str(i))},  # a local store each
            stack.workdir / f"{env['TIERSTREAM_APP_ID']}-{i}.log",
        )
        for i in range(workers)
    ]
    try:
        run = work_off(procs, customer + eods, days * parsed.partitions, timeout=3600)
    finally:
        for w in procs:
            w.stop()
    return customer / run.seconds, run.cpu / customer * 1e6, run.peak_rss, run.held_peak


def memory(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MiB of a process."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def changelog_records(settings: Settings) -> int:
    """Records in the customer table's changelog so far, counted by reading them all (Tansu
    reports a partition's end as its last batch's first offset + 1)."""
    name = changelog_topic(settings)
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, fetch_max_wait_ms=10, max_poll_records=5000)
    try:
        consumer.assign([TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or set()])
        consumer.seek_to_beginning()
        count = 0
        while batch := consumer.poll(timeout_ms=1000):
            count += sum(len(records) for records in batch.values())
        return count
    finally:
        consumer.close()


def redis_commands(url: str) -> int:
    stats = redis.Redis.from_url(url).info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


def latency(settings: Settings, per_second: float, seconds: float) -> list[float]:
    """Send one balance a time for a new customer at a steady rate; each makes an initial tier
    change. Milliseconds from the send to reading the change from tier-changes."""
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    count = int(per_second * seconds)
    consumer = KafkaConsumer(
        topics.TIER_CHANGES.full_name(settings.topic_prefix),
        bootstrap_servers=settings.bootstrap,
        auto_offset_reset="latest",
        group_id=None,
        fetch_max_wait_ms=10,
    )
    consumer.poll(timeout_ms=1000)  # join and position at the end before sending

    def read() -> None:
        deadline = time.monotonic() + seconds + 60
        while len(got) < count and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=50).values():
                now = time.monotonic()
                for r in recs:
                    got.setdefault(orjson.loads(r.value)["customer_id"], now)

    reader = threading.Thread(target=read)
    reader.start()
    producer = kafka_admin.producer(settings)
    name = topics.BALANCES.full_name(settings.topic_prefix)
    start = time.monotonic()
    for i in range(count):
        cid = f"LAT{i:06d}"
        value = {
            "event_id": f"lat{i}",
            "customer_id": cid,
            "account_id": "a",
            "ts": "2026-11-24T10:00:00Z",
            "product": "savings",
            "balance": "1000.00",
            "currency": "CNY",
        }
        due = start + i / per_second
        while (now := time.monotonic()) < due:
            time.sleep(min(due - now, 0.001))
        sent[cid] = time.monotonic()
        producer.send(name, key=cid.encode(), value=orjson.dumps(value))  # leaves after the 5 ms linger
    producer.flush()
    reader.join()
    consumer.close()
    producer.close()
    return [(got[c] - sent[c]) * 1000 for c in sent if c in got]


def percentiles(values: list[float]) -> tuple[float, float, float]:
    qs = statistics.quantiles(values, n=100)
    return qs[49], qs[98], max(values)
