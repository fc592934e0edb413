"""Faults, with real processes: a worker SIGKILLed at a random point of a 200-customer,
30-business-day stream (in the middle of a batch or of a close), or exactly after its
states reached the changelog and before their outputs were sent, then a replacement. What
the workers published and what Redis holds must be what the core decides for the same
records: nothing lost, nothing counted twice (the customer views, metrics included, are the
core's), outputs on the topics more than once only as exact copies (counted and printed).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import pytest

from schemas import topics
from tests.integration.test_pipeline import (
    Feeder,
    days_of,
    read_all,
    scenario_bank,
    settle,
    verify,
    wait_for_assignment,
)

CUSTOMERS, DAYS = 200, 30


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_worker_killed_at_a_random_point_loses_nothing_and_counts_nothing_twice(
    broker: tuple[str, str], redis_url: str, names: dict[str, str], start_worker: Any, seed: int
) -> None:
    bootstrap, _ = broker
    partitions = 4
    rng = random.Random(seed)
    kill_day, in_close, delay = rng.randrange(3, DAYS - 2), rng.random() < 0.5, rng.uniform(0.0, 0.8)
    worker = start_worker(partitions)
    wait_for_assignment([worker], partitions)
    feeder = Feeder(bootstrap, names["topics"], partitions, [worker])
    recovery = 0.0
    for d, (phases, eod) in enumerate(days_of(scenario_bank(CUSTOMERS, DAYS).records())):
        if d != kill_day:
            feeder.send_day(phases, eod)
            continue
        if in_close:  # the day's records in, then killed while its close runs (or waits)
            feeder.send_day(phases, None)
            assert eod is not None
            feeder.send([eod], eod=True)
        else:  # killed in the middle of a batch: some applied, some not, offsets partly committed
            batch = max(phases, key=len)
            for p in phases[: phases.index(batch)]:
                feeder.send(p)
            feeder.send(batch, drain=False)
        time.sleep(delay)
        worker.kill()
        started = time.monotonic()
        worker = start_worker(partitions)
        wait_for_assignment([worker], partitions)
        feeder.workers = [worker]
        feeder.records = settle(worker)  # it replays from the committed offsets: count from there
        recovery = time.monotonic() - started
        if not in_close:
            for p in phases[phases.index(batch) + 1 :]:
                feeder.send(p)
            if eod is not None:
                feeder.send([eod], eod=True)
    feeder.drain()
    verify(bootstrap, redis_url, names, feeder, copies=True)
    copies = duplicate_outputs(bootstrap, names["topics"])
    print(
        f"FAULT sigkill seed={seed} day={kill_day} {'close' if in_close else 'batch'} delay={delay:.2f}s "
        f"inputs={feeder.engine.counters.records_in} lost=0 double_counted=0 duplicate_outputs={copies} "
        f"recovery_s={recovery:.1f}"
    )


def duplicate_outputs(bootstrap: str, prefix: str) -> dict[str, int]:
    """Per output topic, the records beyond one per event_id."""
    copies = {}
    for t in topics.OUTPUTS:
        published = Counter(v["event_id"] for v in read_all(bootstrap, t.full_name(prefix)))
        copies[t.name] = sum(published.values()) - len(published)
    return copies


def test_a_crash_between_the_states_and_their_outputs_loses_no_output(
    broker: tuple[str, str], redis_url: str, names: dict[str, str], start_worker: Any
) -> None:
    """The fault injection point (TIERSTREAM_TEST_CRASH_AFTER_OUTPUTS, tests only): once the
    worker has made 3,000 outputs it holds them back, makes the states and their outboxes
    durable, and is killed without sending them (or the progress, which waits for them).
    The offsets were not committed, so its replacement reads those records again, finds
    them in the states (duplicates): the outputs reach the topics from the outboxes alone,
    and the dead letters, which have none, are made again."""
    bootstrap, _ = broker
    partitions = 4
    worker = start_worker(partitions, TIERSTREAM_TEST_CRASH_AFTER_OUTPUTS="3000")
    wait_for_assignment([worker], partitions)
    feeder = Feeder(bootstrap, names["topics"], partitions, [worker])
    crashed_at = None

    def send(batch: list[Any], eod: bool = False) -> None:
        nonlocal worker, crashed_at
        try:
            feeder.send(batch, eod=eod)
        except AssertionError:  # the drain found the worker dead: the injected crash
            if crashed_at is not None or worker.proc.poll() is None:
                raise
            assert "event=crash_injected outputs_held=True" in worker.log.read_text()
            crashed_at = feeder.engine.clock.closed
            worker = start_worker(partitions)
            wait_for_assignment([worker], partitions)
            feeder.workers = [worker]
            feeder.records = settle(worker)

    for phases, eod in days_of(scenario_bank(CUSTOMERS, DAYS).records()):
        for batch in phases:
            if batch:
                send(batch)
        if eod is not None:
            send([eod], eod=True)
    feeder.drain()
    assert crashed_at is not None
    verify(bootstrap, redis_url, names, feeder, copies=True)
    print(
        f"FAULT outbox crash after 3,000 outputs (clock {crashed_at}) inputs={feeder.engine.counters.records_in} "
        f"lost=0 double_counted=0 duplicate_outputs={duplicate_outputs(bootstrap, names['topics'])}"
    )
