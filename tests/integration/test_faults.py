"""Faults, with real processes: a worker SIGKILLed at a random point of a 200-customer,
30-business-day stream (in the middle of a batch or of a close), then a replacement. What
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
    copies = {}
    for t in topics.OUTPUTS:
        published = Counter(v["event_id"] for v in read_all(bootstrap, t.full_name(names["topics"])))
        copies[t.name] = sum(published.values()) - len(published)
    print(
        f"FAULT sigkill seed={seed} day={kill_day} {'close' if in_close else 'batch'} delay={delay:.2f}s "
        f"inputs={feeder.engine.counters.records_in} lost=0 double_counted=0 duplicate_outputs={copies} "
        f"recovery_s={recovery:.1f}"
    )
