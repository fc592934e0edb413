"""Hostile input through a real worker (a share of what ``tests/fuzz`` sends the core): the
worker neither crashes nor stalls, every bad record is a dead letter on the topic with its
reason, and its counters add up exactly."""

from __future__ import annotations

from collections import Counter
from typing import Any

from devkit.synthetic import Record
from schemas import topics
from tests.hostile import HostileStream
from tests.integration.test_pipeline import Feeder, read_all, wait_for_assignment

PER_TOPIC = 2_000
# reasons a record earns whatever order the partitions are read in (late, future and
# duplicates depend on where the clock and the customer's state stand when it is applied)
ORDER_FREE = ("invalid_json", "schema", "unknown_currency", "unknown_tier")


def test_a_worker_takes_a_hostile_stream_and_its_counters_add_up(
    broker: tuple[str, str], redis_url: str, names: dict[str, str], start_worker: Any
) -> None:
    bootstrap, _ = broker
    partitions = 4
    worker = start_worker(partitions)
    wait_for_assignment([worker], partitions)
    feeder = Feeder(bootstrap, names["topics"], partitions, [worker])
    batch: list[Record] = []
    for topic, key, raw in HostileStream(seed=3).records(PER_TOPIC):
        if raw is None and (not key or topic is topics.EOD):  # eod copies are sent without a key
            key, raw = (None, b"") if topic is topics.EOD else (b"tombstone", None)  # the client refuses neither
        record = Record(topic, key, raw)  # type: ignore[arg-type]  # raw None: a tombstone
        if topic is topics.EOD:  # nothing waits for the worker: what is checked is order-free
            feeder.send(batch, drain=False)
            feeder.send([record], eod=True)
            batch = []
        else:
            batch.append(record)
    feeder.send(batch, drain=False)
    feeder.drain(timeout=180)

    c = worker.counters()
    assert c is not None and worker.proc.poll() is None  # alive, and answering
    assert c["records_in"] == feeder.records == c["accepted"] + c["duplicates"] + sum(c["dead_letters"].values())
    core = feeder.engine.counters
    assert core.records_in == feeder.records
    for reason in ORDER_FREE:
        assert c["dead_letters"].get(reason, 0) == core.dead_letters.get(reason, 0) > 0, (reason, c, core)
    dead = read_all(bootstrap, topics.DEAD_LETTERS.full_name(names["topics"]), sum(c["dead_letters"].values()))
    assert Counter(d["reason"] for d in dead) == Counter(c["dead_letters"])  # each one on the topic, once
    assert not c["pending_closes"] and c["days_closed"] == partitions * (core.days_closed)
