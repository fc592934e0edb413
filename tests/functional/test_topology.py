"""The worker's topology without a broker: routing, the close gate, the scorer and the
outbox, driven through ``tests/functional/topology.py`` and compared with the reference
engine fed the same records."""

from __future__ import annotations

import asyncio
import itertools
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from devkit.synthetic import BankConfig, SyntheticBank
from schemas import topics
from scoring.clock import Clock
from scoring.days import parse_day
from scoring.engine import Engine
from scoring.outputs import Source
from scoring.projection import customer_view
from streams.frames import decode
from streams.routing import partition_of
from streams.rules_file import load_rules
from streams.sinks import CustomerWrite, MemoryTierSink
from tests.functional.topology import Topology

RULES = load_rules()
DAY_MS = 86_400_000
T0 = 1_790_000_000_000  # a Kafka timestamp, ms


def balance(cid: str, day: str, amount: str, event_id: str) -> bytes:
    value = {
        "event_id": event_id,
        "customer_id": cid,
        "account_id": "a1",
        "ts": f"{day}T12:00:00Z",
        "product": "savings",
        "balance": amount,
        "currency": "CNY",
    }
    return orjson.dumps(value)


def eod(day: str) -> bytes:
    return orjson.dumps({"event_id": f"eod-{day}", "business_date": day})


@pytest.fixture(params=["memory", "rocksdb"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Path | None]:
    """Where each new worker keeps its table: nowhere (memory), or a new local store."""
    made = itertools.count()
    return lambda: None if request.param == "memory" else tmp_path / f"store-{next(made)}"


def without_emitted_at(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in value.items() if k != "emitted_at"} for value in values]


def all_marks(topo: Topology, ts: int, **late: int) -> dict[str, int]:
    """Every input partition at ``ts``, but those named (``balances_1=...``) elsewhere."""
    marks = {f"{t.name}:{p}": ts for t, n in topo.SOURCES.items() for p in range(n)}
    marks.update({k.replace("_", ":"): v for k, v in late.items()})
    return marks


def test_a_customers_records_meet_in_its_partition_and_an_eod_reaches_every_partition() -> None:
    async def run() -> None:
        topo = Topology(RULES)
        await topo.produce(topics.BALANCES, balance("c1", "2026-11-02", "10", "b1"), T0, partition=0)
        await topo.produce(topics.BALANCES, balance("c1", "2026-11-02", "20", "b2"), T0, partition=1)
        await topo.produce(topics.EOD, eod("2026-11-02"), T0 + 1)
        await topo.produce(topics.BALANCES, b'{"event_id": "b3", "balance": "5"}', T0 + 2, partition=1)
        home = partition_of("c1", topo.partitions)
        for q, frames in enumerate(topo.routed):
            kinds = [("eod" if f.eod else f.offset) for f in map(decode, frames)]  # type: ignore[union-attr]
            assert kinds == ([0, 0, "eod"] if q == home else ["eod"])
        # no customer to route to: a dead letter where it was read, counted once
        (dead,) = topo.outputs.values(topics.DEAD_LETTERS)
        assert (dead["reason"], dead["source_topic"], dead["partition"], dead["offset"]) == ("schema", "balances", 1, 1)
        assert topo.scorer.core.counters.records_in == 1

    asyncio.run(run())


def test_a_checkpoint_writes_each_changed_customer_once_into_its_own_partition() -> None:
    async def run() -> None:
        topo = Topology(RULES)
        for i, cid in enumerate(["c1", "c2", "c1", "c3", "c1", "c2"]):
            await topo.produce(topics.BALANCES, balance(cid, "2026-11-02", str(100 + i), f"b{i}"), T0 + i)
        await topo.score()
        written = sorted((cid, q) for q, cid, _ in topo.changelog.records if cid)  # "": a partition's progress
        assert written == sorted((cid, partition_of(cid, topo.partitions)) for cid in ("c1", "c2", "c3"))
        assert Topology(RULES, recover_from=topo.changelog).states["c1"].state.seen.keys() == {
            "b0",
            "b2",
            "b4",
        }  # all three, in one record

    asyncio.run(run())


def test_a_close_waits_for_a_lagging_input_partition_and_holds_what_comes_after_it() -> None:
    """balances:1 lags: its record of the closing day is routed after the eod. The close
    must wait for it, and apply exactly what the reference engine applies for the records
    in the order they were stamped."""

    async def run() -> None:
        topo = Topology(RULES)
        reference = Bank()
        first = await topo.produce(topics.BALANCES, balance("c1", "2026-11-02", "100", "b1"), T0, partition=0)
        close = await topo.produce(topics.EOD, eod("2026-11-02"), T0 + 10)
        after = await topo.produce(topics.BALANCES, balance("c1", "2026-11-03", "900000", "b3"), T0 + 20, partition=0)
        topo.watermarks(all_marks(topo, T0 + 20, balances_1=0))
        await topo.score()
        assert topo.clocks == {}  # the close waits for balances:1
        home = partition_of("c1", topo.partitions)
        assert (home, 1) in topo.acks.kept and (home, 2) in topo.acks.kept  # the eod, and the record after it
        assert (home, 1) not in topo.acks.acked and (home, 2) not in topo.acks.acked

        lagging = await topo.produce(topics.BALANCES, balance("c1", "2026-11-02", "800000", "b2"), T0 + 5, partition=1)
        topo.watermarks(all_marks(topo, T0 + 20))
        await topo.score()
        assert topo.clocks == {q: parse_day("2026-11-02") for q in range(topo.partitions)}
        # each partition's clock reached its changelog after the states of its close
        for q in range(topo.partitions):
            mine = [(cid, data) for p, cid, data in topo.changelog.records if p == q]
            assert mine[-1][0] == "" and mine[-1][1].split()[0] == b"%d" % parse_day("2026-11-02")
        for record in (first, lagging, close, after):  # stamped order
            reference.send(record)
        assert without_emitted_at(topo.outputs.values(topics.TIER_CHANGES)) == reference.values(topics.TIER_CHANGES)
        assert without_emitted_at(topo.outputs.values(topics.RM_ALERTS)) == reference.values(topics.RM_ALERTS)
        assert topo.sink.hashes["c1"]["as_of"] == "2026-11-03"
        assert sorted(topo.acks.acked) == sorted({(q, o) for q in range(4) for o in range(len(topo.routed[q]))})

    asyncio.run(run())


def test_an_eod_far_ahead_of_a_waiting_close_is_a_future_dead_letter_and_closes_nothing() -> None:
    """An eod is judged by the days closed or waiting to close in the partition, as the
    core, taking one eod at a time, judges it: a mistyped year read while the first close
    still waits must not become a close of some 13,000 days."""

    async def run() -> None:
        topo = Topology(RULES)
        await topo.produce(topics.BALANCES, balance("c1", "2026-11-02", "100", "b1"), T0)
        await topo.produce(topics.EOD, eod("2026-11-02"), T0 + 10)
        await topo.produce(topics.EOD, eod("2062-11-03"), T0 + 20)  # while 11-02's close waits
        await topo.produce(topics.EOD, eod("2026-11-04"), T0 + 30)
        topo.watermarks(all_marks(topo, T0 + 40))
        await topo.score()
        assert topo.clocks == {q: parse_day("2026-11-04") for q in range(topo.partitions)}
        (dead,) = topo.outputs.values(topics.DEAD_LETTERS)  # counted once, by partition 0's copy
        assert (dead["reason"], dead["causation_id"]) == ("future", "eod-2062-11-03")
        counters = topo.scorer.core.counters
        assert counters.records_in == counters.accepted + counters.duplicates + sum(counters.dead_letters.values())

    asyncio.run(run())


def test_outputs_kafka_never_acknowledged_are_sent_again_by_the_partitions_next_owner(
    stores: Callable[[], Path | None],
) -> None:
    async def run() -> None:
        topo = Topology(RULES, store=stores())
        topo.outputs.down = True
        await topo.produce(topics.BALANCES, balance("c1", "2026-11-02", "100", "b1"), T0)
        await topo.score()
        await topo.produce(topics.BALANCES, balance("c1", "2026-11-02", "150", "b1b"), T0)
        await topo.score()  # a later write of the customer keeps what is still unacknowledged
        assert topo.outputs.sent == []
        stored = topo.states["c1"]
        assert [seq for seq, _ in stored.outbox] == [1]  # the initial placement, not acknowledged

        owner = Topology(RULES, store=stores(), recover_from=topo.changelog)  # the next owner reads the changelog
        await owner.produce(topics.BALANCES, balance("c1", "2026-11-02", "200", "b2"), T0 + 1)
        await owner.score()
        changes = owner.outputs.values(topics.TIER_CHANGES)
        assert [c["event_id"] for c in changes] == ["c1:1"]  # sent again, same id
        assert owner.sink.hashes["c1"]["sequence"] == "1"
        await owner.produce(topics.BALANCES, balance("c1", "2026-11-02", "300", "b3"), T0 + 2)
        await owner.score()
        assert owner.states["c1"].outbox == []  # acknowledged since, and dropped at the next write

    asyncio.run(run())


def test_outputs_acknowledged_before_a_partition_is_given_up_are_not_sent_again(
    stores: Callable[[], Path | None],
) -> None:
    async def run() -> None:
        topo = Topology(RULES, store=stores())
        await topo.produce(topics.BALANCES, balance("c1", "2026-11-02", "100", "b1"), T0)
        await topo.score()  # the initial placement: Kafka and Redis have it
        assert [seq for seq, _ in topo.states["c1"].outbox] == [1]  # dropped at the next write only
        assert topo.scorer.drop_acknowledged_outboxes(set(range(topo.partitions))) == 1  # the runtime's _settle
        await topo.score()
        assert topo.states["c1"].outbox == []

        owner = Topology(RULES, store=stores(), recover_from=topo.changelog)
        await owner.produce(topics.BALANCES, balance("c1", "2026-11-02", "100", "b2"), T0 + 1)
        await owner.score()
        assert owner.outputs.values(topics.TIER_CHANGES) == []  # nothing sent again

    asyncio.run(run())


def test_a_crash_between_the_changelog_and_the_redis_flush_loses_no_output(stores: Callable[[], Path | None]) -> None:
    async def run() -> None:
        topo = Topology(RULES, store=stores())
        await topo.produce(topics.BALANCES, balance("c1", "2026-11-02", "100", "b1"), T0)
        await topo.score(checkpoint=False)  # Kafka has acknowledged the placement c1:1
        await topo.produce(topics.BALANCES, balance("c1", "2026-11-02", "150", "b2"), T0 + 1)
        await topo.score(checkpoint=False)  # a later write of the customer
        topo.scorer.sink = UnreachableSink()
        with pytest.raises(ConnectionError):
            await topo.scorer.checkpoint()  # the changelog got the state; Redis did not
        assert topo.acks.acked == [] and [cid for _, cid, _ in topo.changelog.records if cid] == ["c1"]

        owner = Topology(RULES, store=stores(), recover_from=topo.changelog)
        await owner.produce(topics.BALANCES, balance("c1", "2026-11-02", "100", "b1"), T0)  # the replay
        await owner.produce(topics.BALANCES, balance("c1", "2026-11-02", "150", "b2"), T0 + 1)
        await owner.score()
        assert owner.scorer.core.counters.duplicates == 2  # the replayed events themselves make nothing
        assert [eid for eid, _ in owner.sink.streams["changes"]] == ["c1:1"]  # the outbox reached Redis
        assert owner.sink.hashes["c1"]["sequence"] == "1"

    asyncio.run(run())


class UnreachableSink(MemoryTierSink):
    async def write(self, writes: Sequence[CustomerWrite]) -> None:
        raise ConnectionError("Redis unreachable")


def test_the_topology_publishes_what_the_reference_engine_publishes(stores: Callable[[], Path | None]) -> None:
    async def run() -> None:
        topo = Topology(RULES, store=stores())
        reference = Bank()
        bank = SyntheticBank(BankConfig(customers=60, days=12, duplicate_rate=0.02, invalid_rate=0.02, history_days=20))
        ts = T0
        close_writes = []  # changelog records of each close
        for r in bank.records():
            ts += 1
            partition = zlib.crc32(r.key or b"") % 2 if r.topic is topics.BALANCES else 0
            reference.send(await topo.produce(r.topic, r.value, ts, partition=partition, key=r.key))
            if r.topic is topics.EOD:
                await topo.score()
                before = len(topo.changelog.records)
                topo.watermarks(all_marks(topo, ts))
                await topo.score()
                close_writes.append(len(topo.changelog.records) - before)
        await topo.score()
        # a close writes only the states it changed, and the changelog still holds every
        # state: a recovered one may hold what a roll-off forgot since, but it shows the same
        assert min(close_writes[1:]) < len(topo.states) / 2, close_writes
        owner = Topology(RULES, store=stores(), recover_from=topo.changelog)
        assert owner.clocks == topo.clocks
        recovered, live = owner.states, topo.states
        assert recovered.keys() == live.keys()
        for cid, value in live.items():
            clock = Clock(topo.clocks[partition_of(cid, topo.partitions)])
            assert recovered[cid].outbox == value.outbox
            assert customer_view(recovered[cid].state, clock, RULES) == customer_view(value.state, clock, RULES)
        for topic in topics.OUTPUTS:
            got = without_emitted_at(topo.outputs.values(topic))
            want = reference.values(topic)
            assert sorted(got, key=orjson.dumps) == sorted(want, key=orjson.dumps), topic.name
        engine, counters = reference.engine, topo.scorer.core.counters
        assert (counters.records_in, counters.accepted, counters.duplicates, counters.dead_letters) == (
            engine.counters.records_in,
            engine.counters.accepted,
            engine.counters.duplicates,
            engine.counters.dead_letters,
        )
        assert counters.dead_letters and counters.duplicates  # the stream did exercise both
        for cid, st in engine.states.items():
            fields = {k: v for k, v in topo.sink.hashes[cid].items() if k != "updated_at"}
            assert fields == customer_view(st, engine.clock, RULES), cid

    asyncio.run(run())


class Bank:
    """The reference engine, fed the very records the topology routed."""

    def __init__(self) -> None:
        self.engine = Engine(RULES)
        self.outputs: list[tuple[str, dict[str, Any]]] = []

    def send(self, record: Any) -> None:
        topic = topics.BY_NAME[record.topic]
        source = Source(record.topic, record.partition, record.offset, record.key, record.raw)
        self.outputs += [(out.topic.name, out.value) for out in self.engine.process(topic, source)]

    def values(self, topic: topics.Topic) -> list[dict[str, Any]]:
        return without_emitted_at([v for name, v in self.outputs if name == topic.name])


def test_a_partitions_next_owner_replays_nothing_applied_behind_a_waiting_close() -> None:
    """A waiting close keeps its eod un-committed, so the next owner reads the partition
    again from there; what was applied after it must neither count again nor be judged
    against a clock that moved on (it would come out late)."""

    async def run() -> None:
        topo = Topology(RULES)
        home = partition_of("c1", topo.partitions)
        await topo.produce(topics.BALANCES, balance("c1", "2026-11-02", "100", "b1"), T0, partition=0)
        await topo.produce(topics.EOD, eod("2026-11-02"), T0 + 10)
        await topo.produce(topics.BALANCES, balance("c1", "2026-11-02", "200", "b2"), T0 + 5, partition=1)
        topo.watermarks(all_marks(topo, T0 + 20, balances_1=0))
        await topo.score()  # the close waits for balances:1; b2, stamped before it, is applied
        assert (home, 1) in topo.acks.kept and (home, 2) in topo.acks.acked
        assert topo.scorer.core.counters.accepted == 3  # b1, the eod, b2

        # the next owner: states and progress from the changelog, the partition read again
        # from the committed offset (the waiting eod's), and the close's watermarks come
        owner = Topology(RULES, recover_from=topo.changelog)
        owner.scorer.progress.update(topo.changelog.progresses)
        owner.routed = [list(r) for r in topo.routed]
        owner.scored = [len(r) for r in topo.routed]
        owner.scored[home] = 1
        owner.watermarks(all_marks(owner, T0 + 20))
        await owner.score()
        counters = owner.scorer.core.counters
        # only the waiting eod is read again (its routed partition 0 copy is the one counted)
        eod_again = 1 if home == 0 else 0
        assert (counters.records_in, counters.duplicates, counters.dead_letters) == (eod_again, 0, {})
        assert owner.clocks[home] == parse_day("2026-11-02")  # the close went
        assert owner.states["c1"].state.seen.keys() == {"b1", "b2"}

    asyncio.run(run())


def test_input_records_routed_again_after_a_router_restart_are_taken_in_once() -> None:
    """A router that crashed routes the input records since its last commit again, under new
    routed offsets, after the scorer applied them and the clock moved: each copy is only
    acknowledged (judged again, a balance of the closed day would come out late, and a bad
    record would be a second dead letter). The partition's next owner knows it too, from the
    changelog's progress."""

    async def run() -> None:
        topo = Topology(RULES)
        b1 = await topo.produce(topics.BALANCES, balance("c1", "2026-11-02", "100", "b1"), T0, partition=0)
        bad = await topo.produce(topics.BALANCES, b'{"customer_id": "c1"}', T0 + 1, partition=0)
        end = await topo.produce(topics.EOD, eod("2026-11-02"), T0 + 10)
        topo.watermarks(all_marks(topo, T0 + 20))
        await topo.score()
        counters = topo.scorer.core.counters
        before = (counters.records_in, counters.accepted, dict(counters.dead_letters))
        assert before == (3, 2, {"schema": 1})

        for record in (b1, bad, end):  # the router's restart: read again from offset 0
            topo.route(record)
        await topo.score()
        assert (counters.records_in, counters.accepted, dict(counters.dead_letters)) == before
        assert counters.duplicates == 0

        owner = Topology(RULES, recover_from=topo.changelog)  # the same again, on the next owner
        owner.scorer.progress.update(topo.changelog.progresses)
        owner.routed = [list(r) for r in topo.routed]
        owner.scored = [len(r) for r in topo.routed]
        for record in (b1, bad, end):
            owner.route(record)
        await owner.score()
        assert owner.scorer.core.counters.records_in == 0
        # only the outbox of the first worker, sent again: no dead letter, nothing new
        assert all(sent in topo.outputs.sent for sent in owner.outputs.sent)

    asyncio.run(run())
