"""The pipeline on a real broker and a real Redis against the reference engine.

Each business day is produced in phases (profiles, then balances, then transactions, then
the eod), each phase drained by the workers before the next one starts. Every customer's
events are then consumed in one known order, so the Faust workers must publish exactly
what ``scoring.engine.Engine`` returns for the same records in the same order.
"""

from __future__ import annotations

import random
import re
import time
import zlib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from devkit.synthetic import BankConfig, Record, SyntheticBank
from schemas import topics
from scoring.engine import Engine
from scoring.outputs import Source
from scoring.parsing import customer_of
from scoring.projection import customer_view
from streams.rules_file import load_rules
from tests.integration.conftest import WorkerProcess

pytestmark = pytest.mark.integration

PHASES = (topics.CUSTOMERS, topics.BALANCES, topics.TRANSACTIONS)


def days_of(records: Iterator[Record]) -> Iterator[tuple[list[list[Record]], Record | None]]:
    """Per business day: its records grouped by input topic (each topic in stream order),
    and the eod that ends it."""
    batch: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r.topic is topics.EOD:
            yield [batch[t.name] for t in PHASES], r
            batch = defaultdict(list)
        else:
            batch[r.topic.name].append(r)
    if batch:
        yield [batch[t.name] for t in PHASES], None


def order_fixed(phases: list[list[Record]]) -> list[list[Record]]:
    """A day's phases to be sent without waiting for the workers in between, trimmed so that
    each customer's records come from one topic only (the first it has records in). A
    worker takes a customer's records from different topics in the order it reads them
    (contract §8); read as a backlog, a balance and a transaction of the same day may come
    in either order, and what depends on it (a risk signal's 30-day average) is then not
    the core's. Records naming no customer stay: they are dead letters wherever read."""
    first: dict[str, int] = {}
    return [
        [r for r in phase if (cid := customer_of(r.value)) is None or first.setdefault(cid, i) == i]
        for i, phase in enumerate(phases)
    ]


class Feeder:
    """Produces records with deliberately inconsistent partitioning across topics and
    feeds the very same records, in the same order, to the reference engine."""

    def __init__(self, bootstrap: str, prefix: str, partitions: int, workers: list[WorkerProcess]) -> None:
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.partitions = partitions
        self.workers = workers
        self.engine = Engine(load_rules())
        self.expected: list[Any] = []
        self.records = 0  # input records produced, eod copies included: drain waits for them all
        self.rng = random.Random(11)

    def _partition(self, r: Record) -> int | None:
        if r.topic is topics.BALANCES:
            # not Kafka's partitioner, but one customer stays on one partition: order kept
            return (zlib.crc32(r.key or b"") + 1) % self.partitions
        if r.topic is topics.CUSTOMERS:
            return len(r.value or b"") % self.partitions  # by something else entirely
        return None  # transactions: by key

    def send(self, batch: list[Record], eod: bool = False, drain: bool = True, timestamp_ms: int | None = None) -> None:
        name = lambda r: r.topic.full_name(self.prefix)  # noqa: E731
        if eod:
            futures = [
                (
                    batch[0],
                    self.producer.send(name(batch[0]), value=batch[0].value, partition=p, timestamp_ms=timestamp_ms),
                )
                for p in range(self.partitions)
            ]
        else:
            futures = [
                (r, self.producer.send(name(r), key=r.key, value=r.value, partition=self._partition(r))) for r in batch
            ]
        self.producer.flush()
        for r, fut in futures:
            meta = fut.get(timeout=30)
            source = Source(meta.topic, meta.partition, meta.offset, r.key, r.value)
            self.expected += self.engine.process(r.topic, source)
        # the workers count every input record, each eod copy once (its routed partition 0 copy)
        self.records += len(futures)
        if not eod and drain:
            self.drain()

    def send_day(self, phases: list[list[Record]], eod: Record | None) -> None:
        """A day's records, topic by topic (each drained), then its eod."""
        for batch in phases:
            if batch:
                self.send(batch)
        if eod is not None:
            self.send([eod], eod=True)

    def drain(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        seen = -1
        while time.monotonic() < deadline:
            for w in self.workers:
                if w.proc.poll() is not None:
                    raise AssertionError(f"worker died: {w.log.read_text()[-3000:]}")
            counters = [w.counters() for w in self.workers]
            seen = sum(c["records_in"] for c in counters if c)
            if seen >= self.records and all(c is not None for c in counters):
                return
            time.sleep(0.05)
        states = [
            {k: v for k, v in (w.counters() or {}).items() if k not in ("outputs", "dead_letters")}
            for w in self.workers
        ]
        raise AssertionError(
            f"workers processed {seen} of {self.records} records; routed (partition, committed, end): "
            f"{self.routed_positions()}; their counters: {states}"
        )

    def routed_positions(self) -> list[tuple[int, int | None, int]]:
        """Per routed partition, the group's committed offset and the end: what is left to score."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.prefix[:-1], enable_auto_commit=False)
        try:
            name = next(n for n in consumer.topics() if n.startswith(self.prefix) and n.endswith("-routed"))
            parts = [TopicPartition(name, q) for q in range(self.partitions)]
            ends = consumer.end_offsets(parts)
            return [(tp.partition, consumer.committed(tp), ends[tp]) for tp in parts]
        finally:
            consumer.close()


def produce_backlog(bootstrap: str, prefix: str, partitions: int, config: BankConfig) -> Feeder:
    """A synthetic bank's whole stream, eods included, in the topics before any worker runs."""
    feeder = Feeder(bootstrap, prefix, partitions, [])
    for phases, eod in days_of(SyntheticBank(config).records()):
        for batch in phases:
            feeder.send(batch, drain=False)
        if eod is not None:
            feeder.send([eod], eod=True)
    return feeder


def wait_for_assignment(workers: list[WorkerProcess], partitions: int, timeout: float = 90.0) -> None:
    """Every worker holds some routed partitions and together all of them: the group is
    settled, so no partition moves (and no table is recovered) while the test runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = [(c or {}).get("routed_partitions", []) for c in (w.counters() for w in workers)]
        if all(held) and sorted(p for h in held for p in h) == list(range(partitions)):
            return
        time.sleep(0.2)
    raise AssertionError(f"workers did not settle on the partitions: {held}")


def settle(worker: WorkerProcess, quiet: float = 3.0, timeout: float = 120.0) -> int:
    """Wait until the worker has read every input to its end and processed nothing new
    for ``quiet`` seconds; its records_in then."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        c = worker.counters() or {}
        n = c.get("records_in", -1)
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since > quiet and not any(c.get("consumer_lag", {"?": 1}).values()):
            return int(n)
        time.sleep(0.2)
    raise AssertionError("the worker did not settle")


def read_topic(bootstrap: str, name: str, expected: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    consumer = KafkaConsumer(
        name, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                out += [orjson.loads(r.value) for r in records]
            if len(out) >= expected:
                time.sleep(1.0)  # anything beyond the expected would be a bug: give it a chance
                for records in consumer.poll(timeout_ms=500).values():
                    out += [orjson.loads(r.value) for r in records]
                break
    finally:
        consumer.close()
    return out


def read_all(bootstrap: str, name: str, at_least: int = 0, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every record of a topic: read to the reported ends, then until a poll finds nothing
    (Tansu may report an end short of a last batch) and ``at_least`` distinct event_ids have
    come (the last ones may still be on their way)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    parts = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    ends = consumer.end_offsets(parts)
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=1000)
            out += [orjson.loads(r.value) for records in batch.values() for r in records]
            caught_up = all(consumer.position(tp) >= ends[tp] for tp in parts)
            if not batch and caught_up and len({v["event_id"] for v in out}) >= at_least:
                return out
    finally:
        consumer.close()
    raise AssertionError(f"{name}: not read to its end in {timeout}s")


def without_stamp(values: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {v["event_id"]: {k: x for k, x in v.items() if k != "emitted_at"} for v in values}


def differences(mine: Any, theirs: Any) -> Any:
    """Only what differs, (ours, expected), down to the nested field."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        return {
            k: differences(mine.get(k), theirs.get(k))
            for k in mine.keys() | theirs.keys()
            if mine.get(k) != theirs.get(k)
        }
    return (mine, theirs)


def run_scenario(
    broker: tuple[str, str],
    redis_url: str,
    names: dict[str, str],
    workers: list[WorkerProcess],
    customers: int,
    days: int,
    partitions: int = 4,
) -> None:
    bootstrap, _ = broker
    wait_for_assignment(workers, partitions)
    feeder = Feeder(bootstrap, names["topics"], partitions, workers)
    for phases, eod in days_of(scenario_bank(customers, days).records()):
        feeder.send_day(phases, eod)
    feeder.drain()
    verify(bootstrap, redis_url, names, feeder)


def scenario_bank(customers: int, days: int) -> SyntheticBank:
    return SyntheticBank(
        BankConfig(customers=customers, days=days, seed=5, duplicate_rate=0.02, late_rate=40.0, invalid_rate=0.003)
    )


def verify(bootstrap: str, redis_url: str, names: dict[str, str], feeder: Feeder, copies: bool = False) -> None:
    """The outputs and Redis are the reference engine's; ``copies``: after a crash, an
    output may be on its topic more than once, as exact copies."""
    expected = defaultdict(list)
    for o in feeder.expected:
        expected[o.topic.name].append(o.value)
    kinds = {t: len(v) for t, v in expected.items()}
    assert kinds.get("dead-letters", 0) > 0 and kinds.get("risk-signals", 0) > 0 and kinds.get("rm-alerts", 0) > 0
    assert feeder.engine.counters.duplicates > 0 and feeder.engine.counters.dead_letters.get("late", 0) > 0

    for topic in topics.OUTPUTS:
        got = read_all(bootstrap, topic.full_name(names["topics"]), len(expected[topic.name]))
        mine, theirs = without_stamp(got), without_stamp(expected[topic.name])
        assert mine.keys() == theirs.keys(), (topic.name, sorted(mine.keys() ^ theirs.keys())[:10])
        diffs = [(eid, differences(mine[eid], theirs[eid])) for eid in theirs if mine[eid] != theirs[eid]]
        assert not diffs, (topic.name, len(diffs), diffs[:3])
        if copies:
            assert all(without_stamp([v])[v["event_id"]] == mine[v["event_id"]] for v in got), topic.name
        else:
            assert len(got) == len(expected[topic.name]), f"{topic.name}: duplicates published"

    r = redis.Redis.from_url(redis_url, decode_responses=True)
    engine = feeder.engine
    members: dict[tuple[str, str], set[str]] = defaultdict(set)
    for cid, st in engine.states.items():
        stored = r.hgetall(f"{names['redis']}customer:{cid}")
        assert stored.pop("updated_at")
        assert stored == customer_view(st, engine.clock, engine.rules), cid
        members[(st.segment, st.tier or "")].add(cid)
    for (segment, tier), cids in members.items():
        assert r.smembers(f"{names['redis']}members:{segment}:{tier}") == cids
    assert r.xlen(f"{names['redis']}changes") == len(expected["tier-changes"])
    assert r.xlen(f"{names['redis']}rm-alerts") == len(expected["rm-alerts"])
    assert r.xlen(f"{names['redis']}risk-signals") == len(expected["risk-signals"])


def test_workers_publish_exactly_what_the_core_decides(
    broker: tuple[str, str], redis_url: str, names: dict[str, str], start_worker: Any
) -> None:
    run_scenario(broker, redis_url, names, [start_worker()], customers=200, days=30)


def test_two_workers_close_every_day_of_a_long_live_stream(
    broker: tuple[str, str], redis_url: str, names: dict[str, str], start_worker: Any
) -> None:
    """Two workers share 8 partitions over 30 business days. Closes stalled here after about
    25 days when every worker wrote a watermark frame to every routed partition ten times a
    second: the development broker's reads slow down with the number of batches in a
    partition until they return nothing."""
    workers = [start_worker(8), start_worker(8)]
    run_scenario(broker, redis_url, names, workers, customers=200, days=30, partitions=8)


@pytest.mark.parametrize("hold", [0, 1_000], ids=["a day at a time", "bounded overlap"])
def test_a_backlog_closes_days_at_the_same_points_as_live(
    broker: tuple[str, str], redis_url: str, names: dict[str, str], start_worker: Any, hold: int
) -> None:
    """Everything, eods included, is in the topics before the worker starts: the worker
    reads the small eod topic far ahead of the others, and must still close each day
    only after the records stamped before its eod."""
    bootstrap, _ = broker
    partitions = 4
    config = BankConfig(customers=600, days=10, seed=9, duplicate_rate=0.02, late_rate=40.0)
    feeder = produce_backlog(bootstrap, names["topics"], partitions, config)
    worker = start_worker(partitions, hold=hold)
    feeder.workers = [worker]
    feeder.drain(timeout=300)
    # back-pressure: once more than `hold` records were routed ahead of a waiting close,
    # input partitions read up to it pause until it is applied, and are read again from
    # there; the gates hold at most the bound and about one record per input partition
    # (with 0: 8 when written; without back-pressure some 25,000 of the 28,000: days 2-10)
    peak = (worker.counters() or {})["held_peak"]
    assert peak < hold + 100, (peak, feeder.records)
    # and below the bound nothing pauses: the next day is routed while a close waits
    # (1,008 held at most with a bound of 1,000 when written)
    assert peak >= hold // 2, peak
    verify_order_free(bootstrap, redis_url, names, feeder)


def verify_order_free(bootstrap: str, redis_url: str, names: dict[str, str], feeder: Feeder) -> None:
    """What does not depend on the order a worker takes a customer's records from different
    topics in, within a day (records produced ahead of their reading: Kafka orders only
    within a partition): the dead letters and their reasons, and each customer's final
    metrics and as-of day in Redis. (Tier decisions follow the order: a customer record
    read before or after the day's first balance places the customer differently.)"""
    expected = defaultdict(list)
    for o in feeder.expected:
        expected[o.topic.name].append(o.value)
    assert feeder.engine.counters.dead_letters.get("late", 0) > 0
    dead = read_topic(bootstrap, topics.DEAD_LETTERS.full_name(names["topics"]), len(expected["dead-letters"]))
    reasons = lambda v: (v["event_id"], v["reason"])  # noqa: E731
    assert sorted(map(reasons, dead)) == sorted(map(reasons, expected["dead-letters"]))
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    engine = feeder.engine
    for cid, st in engine.states.items():
        view = customer_view(st, engine.clock, engine.rules)
        stored = r.hgetall(f"{names['redis']}customer:{cid}")
        assert (stored["as_of"], stored["metrics"]) == (view["as_of"], view["metrics"]), cid


def test_two_workers_work_off_a_backlog_of_ten_thousand_customers(
    broker: tuple[str, str], redis_url: str, names: dict[str, str], start_worker: Any
) -> None:
    """Everything is in the topics before the workers start; the second one joins while the
    first has a close waiting (Faust then waits at the rebalance for every record in
    processing, and waited forever for the un-acked eod of a waiting close).

    Each customer's balances and transactions interleave in the order the workers read
    them, not the engine's, so tier decisions may differ (contract §8: a corporate
    customer's balance read before its first profile is judged as retail until the profile
    comes). What may not differ: every day closes, the same events are late, every
    customer's metrics and as-of day end where the engine's do, and no output is lost (a
    replay after the rebalance may publish exact copies)."""
    bootstrap, _ = broker
    partitions = 4
    config = BankConfig(customers=10_000, days=3, seed=21, duplicate_rate=0.01, invalid_rate=0.001)
    feeder = produce_backlog(bootstrap, names["topics"], partitions, config)
    # stamped 45 s ahead, the last day's close waits that long: the first worker is sure to
    # have a close waiting when the second joins (it routes the eods before it scores much,
    # and a join takes 6-14 s on the development broker)
    last = Record(topics.EOD, None, b'{"event_id":"eod-2026-10-04","business_date":"2026-10-04"}')
    feeder.send([last], eod=True, timestamp_ms=int(time.time() * 1000) + 45_000)
    workers = [start_worker(partitions)]
    deadline = time.monotonic() + 180
    while not ((c := workers[0].counters()) and c["pending_closes"]):
        assert time.monotonic() < deadline, c
        time.sleep(0.05)
    workers.append(start_worker(partitions))
    wait_for_assignment(workers, partitions)
    assert any((w.counters() or {}).get("pending_closes") for w in workers)  # it joined while a close waits
    feeder.workers = workers
    feeder.drain(timeout=600)
    engine = feeder.engine
    assert engine.counters.days_closed == 4

    expected = defaultdict(list)
    for o in feeder.expected:
        expected[o.topic.name].append(o.value)
    # a dead letter is in no state: one replayed after the rebalance is sent again, the same
    dead = read_all(bootstrap, topics.DEAD_LETTERS.full_name(names["topics"]), len(expected["dead-letters"]))
    distinct = without_stamp(dead)
    assert all(without_stamp([d])[d["event_id"]] == distinct[d["event_id"]] for d in dead)
    assert {(d["event_id"], d["reason"]) for d in distinct.values()} == {
        (d["event_id"], d["reason"]) for d in expected["dead-letters"]
    }

    # every partition closes every day: every customer's as-of day reaches the engine's
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    views = {cid: customer_view(st, engine.clock, engine.rules) for cid, st in engine.states.items()}
    cids = sorted(views)
    deadline = time.monotonic() + 120
    while True:
        pipe = r.pipeline(transaction=False)
        for cid in cids:
            pipe.hgetall(f"{names['redis']}customer:{cid}")
        stored = dict(zip(cids, pipe.execute(), strict=True))
        behind = [cid for cid in cids if stored[cid].get("as_of") != views[cid]["as_of"]]
        if not behind or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not behind, (len(behind), behind[:5], [w.counters() for w in workers])
    wrong = [cid for cid in cids if stored[cid]["metrics"] != views[cid]["metrics"]]
    if wrong:
        got, want = orjson.loads(stored[wrong[0]]["metrics"]), orjson.loads(views[wrong[0]]["metrics"])
        diff = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
        raise AssertionError(f"{len(wrong)} customers' metrics differ, e.g. {wrong[0]} (got, engine): {diff}")
    assert not any((w.counters() or {})["pending_closes"] for w in workers)

    published: dict[str, set[int]] = defaultdict(set)
    for topic in (topics.TIER_CHANGES, topics.RM_ALERTS, topics.RISK_SIGNALS):
        got = read_all(bootstrap, topic.full_name(names["topics"]))
        distinct = without_stamp(got)
        assert all(without_stamp([v])[v["event_id"]] == distinct[v["event_id"]] for v in got), topic.name
        for v in distinct.values():
            published[v["customer_id"]].add(v["sequence"])
    for cid in cids:
        # every output the hash counts is on Kafka: sequences 1..n, none missing
        assert sorted(published[cid]) == list(range(1, int(stored[cid]["sequence"]) + 1)), cid


def test_a_killed_worker_loses_nothing_and_counts_nothing_twice(
    broker: tuple[str, str], redis_url: str, names: dict[str, str], start_worker: Any
) -> None:
    """SIGKILL in the middle of the stream, a new worker takes over: every output the core
    decides is published (duplicates only as exact copies), Redis ends where the core does."""
    bootstrap, _ = broker
    partitions = 4
    first = start_worker(partitions)
    wait_for_assignment([first], partitions)
    feeder = Feeder(bootstrap, names["topics"], partitions, [first])
    bank = SyntheticBank(BankConfig(customers=80, days=8, seed=13, duplicate_rate=0.02))
    killed = False
    for d, (phases, eod) in enumerate(days_of(bank.records())):
        for batch in phases:
            if d == 4 and not killed and batch:
                feeder.send(batch, drain=False)
                time.sleep(0.3)  # mid-batch: some processed, some not, offsets partly committed
                first.kill()
                killed = True
                second = start_worker(partitions)
                wait_for_assignment([second], partitions)
                # it replays from the committed offsets: count from where it settles
                feeder.workers = [second]
                feeder.records = settle(second)
                continue
            if batch:
                feeder.send(batch)
        if eod is not None:
            feeder.send([eod], eod=True)
    assert killed

    expected = defaultdict(list)
    for o in feeder.expected:
        expected[o.topic.name].append(o.value)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    engine = feeder.engine
    deadline = time.monotonic() + 120
    views = {cid: customer_view(st, engine.clock, engine.rules) for cid, st in engine.states.items()}
    while time.monotonic() < deadline:
        if all(r.hget(f"{names['redis']}customer:{c}", "as_of") == v["as_of"] for c, v in views.items()):
            break
        time.sleep(0.2)
    for topic in (topics.TIER_CHANGES, topics.RM_ALERTS, topics.RISK_SIGNALS):
        got = read_topic(bootstrap, topic.full_name(names["topics"]), len(expected[topic.name]))
        copies: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for v in got:
            copies[v["event_id"]].append({k: x for k, x in v.items() if k != "emitted_at"})
        assert copies.keys() == without_stamp(expected[topic.name]).keys(), topic.name
        for eid, versions in copies.items():
            assert all(x == without_stamp(expected[topic.name])[eid] for x in versions), eid
    for cid, view in views.items():
        stored = r.hgetall(f"{names['redis']}customer:{cid}")
        stored.pop("updated_at")
        assert stored == view, cid
    assert r.xlen(f"{names['redis']}changes") == len(expected["tier-changes"])


@pytest.mark.parametrize("restart_from", ["its local store", "the changelog only"])
def test_a_worker_on_the_rocksdb_store_restarts_with_the_same_state(
    broker: tuple[str, str], redis_url: str, names: dict[str, str], start_worker: Any, tmp_path: Path, restart_from: str
) -> None:
    """A worker keeping its customers in a local RocksDB store (a cache of 50 of the 200) is
    killed after 15 of 30 days. Its successor starts on the same store, and reads only the
    changelog past the store's mark (the same machine: the same static group membership),
    or on a new machine, and reads the whole changelog into a new store. Either way it goes
    on exactly where the core does."""
    bootstrap, _ = broker
    partitions = 4
    same_machine = restart_from == "its local store"
    instance = "w0" if same_machine else None
    first = start_worker(partitions, store=tmp_path / "store-1", instance=instance)
    wait_for_assignment([first], partitions)
    feeder = Feeder(bootstrap, names["topics"], partitions, [first])
    for d, (phases, eod) in enumerate(days_of(scenario_bank(200, 30).records())):
        if d == 15:
            first.kill()
            written = changelog_records(bootstrap, f"{names['topics']}{names['app']}-customer-state-changelog")
            store = tmp_path / ("store-1" if same_machine else "store-2")
            second = start_worker(partitions, store=store, instance=instance)
            wait_for_assignment([second], partitions)
            feeder.workers = [second]
            feeder.records = settle(second)  # it replays what was not committed: count from there
            read = sum(int(n) for n in re.findall(r"event=recovered .*records=(\d+)", second.log.read_text()))
            if same_machine:
                # the tail: what the last commit left out (killed as day 14 closes: some of it)
                assert read < written / 4, (read, written)
            else:
                assert read >= written, (read, written)  # Tansu may report an end short of the last batch
        feeder.send_day(phases, eod)
    feeder.drain()
    verify(bootstrap, redis_url, names, feeder, copies=True)


def changelog_records(bootstrap: str, name: str) -> int:
    """How many records a changelog holds (its end offsets)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        parts = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()
