"""One worker's topology — router, close gate, scorer, table, outbox — wired to in-memory
ports instead of Kafka (Kafka Streams' TopologyTestDriver, in spirit).

The runtime (``streams/runtime.py``) is only the wiring of these pieces to Kafka; this
driver is the other wiring: records produced here are routed as the runtime routes them,
appended to in-memory routed partitions, and scored in order as the runtime scores them.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import orjson

from schemas import topics
from schemas.topics import Topic
from scoring.rules import Rules
from streams.changelog import decode_progress, encode_progress
from streams.frames import Routed, Watermarks, decode, encode
from streams.gate import FramePolicy
from streams.local_store import LocalStore
from streams.outbox import Stored, encode_stored
from streams.routing import NoCustomer, Router, ToCustomer, ToEveryPartition, partition_of
from streams.scorer import Progress, Scorer
from streams.sinks import MemoryTierSink
from streams.table import CustomerTable, MemoryTable, StoreTable

NOW = 1_800_000_000.0  # the shell's wall clock, fixed


class MemoryOutputs:
    """Output topics in memory; while ``down`` is set, sends are not acknowledged."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []  # (topic name, value)
        self.down = False

    def send(self, topic: Topic, key: bytes | None, value: bytes, on_sent: Callable[[], None] | None) -> None:
        if self.down:
            return  # never acknowledged
        self.sent.append((topic.name, orjson.loads(value)))
        if on_sent is not None:
            on_sent()

    def values(self, topic: Topic) -> list[dict[str, Any]]:
        return [v for name, v in self.sent if name == topic.name]


class MemoryChangelog:
    """The table's changelog: every record sent, in order (staged in the local store, if
    any, as the runtime's changelog does); ``recover_into`` is what a new owner reads."""

    def __init__(self, local: LocalStore | None) -> None:
        # (partition, customer, value bytes); a partition's clock and progress: (partition, "", ...)
        self.records: list[tuple[int, str, bytes]] = []
        self.progresses: dict[int, Progress] = {}  # the latest of each partition
        self.local = local

    def state(self, partition: int, customer_id: str, value: Stored) -> None:
        self._append(partition, customer_id, encode_stored(value))

    def progress(self, partition: int, day: int | None, progress: Progress) -> None:
        value = encode_progress(day, progress)
        self._append(partition, "", value)
        self.progresses[partition] = decode_progress(value)[1]

    def _append(self, partition: int, key: str, value: bytes) -> None:
        self.records.append((partition, key, value))
        if self.local is not None:
            self.local.stage(partition, key.encode(), value)

    def ends(self) -> dict[int, int]:
        """Per partition, the offset after its last record."""
        ends: dict[int, int] = defaultdict(int)
        for q, _, _ in self.records:
            ends[q] += 1
        return ends

    def recover_into(self, table: CustomerTable, partitions: int) -> dict[int, int]:
        """Read every partition into ``table`` from where it says (as ``changelog.recover``
        does, one record per batch); returns the clocks."""
        by_partition: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        for q, cid, value in self.records:
            by_partition[q].append((cid.encode(), value))
        clocks = {}
        for q in range(partitions):
            records = by_partition[q]
            for offset in range(table.recovery_start(q) or 0, len(records)):
                table.recovered(q, [records[offset]], offset + 1)
            _, clock = table.recovery_done(q)
            day = None if clock is None else decode_progress(clock)[0]
            if day is not None:
                clocks[q] = day
        return clocks


class MemoryAcks:
    def __init__(self) -> None:
        self.acked: list[Any] = []
        self.kept: list[Any] = []

    def ack(self, token: Any) -> None:
        self.acked.append(token)

    def keep(self, token: Any) -> None:
        self.kept.append(token)


class Topology:
    """A worker that reads every input partition and owns every routed partition."""

    SOURCES: ClassVar[dict[Topic, int]] = {
        topics.CUSTOMERS: 1,
        topics.BALANCES: 2,
        topics.TRANSACTIONS: 1,
        topics.EOD: 1,
    }

    def __init__(
        self, rules: Rules, partitions: int = 4, store: Path | None = None, recover_from: MemoryChangelog | None = None
    ) -> None:
        """A memory table, or a local store at ``store`` with a cache of three customers
        (so most reads go to the store); ``recover_from``: a changelog to recover first."""
        self.partitions = partitions
        self.inputs = {t.name: t for t in topics.INPUTS}
        self.router = Router(self.inputs)
        self.routed: list[list[bytes]] = [[] for _ in range(partitions)]
        self.scored = [0] * partitions  # per routed partition: the next offset to score
        self.offsets: dict[str, int] = defaultdict(int)  # per input partition: the next offset
        self.local = LocalStore(store, f"changelog partitions={partitions}") if store is not None else None
        self.table: CustomerTable = MemoryTable(partitions)
        if self.local is not None:
            self.table = StoreTable(partitions, self.local, cache_size=3)
        self.changelog = MemoryChangelog(self.local)
        self.clocks: dict[int, int] = {}
        if recover_from is not None:
            self.clocks = recover_from.recover_into(self.table, partitions)
            self.changelog.records = list(recover_from.records)  # the same topic
        self.outputs = MemoryOutputs()
        self.acks = MemoryAcks()
        self.sink = MemoryTierSink()
        sources = frozenset(f"{t.name}:{p}" for t, n in self.SOURCES.items() for p in range(n))
        self.scorer = Scorer(
            rules,
            self.table,
            self.changelog,
            self.clocks,
            self.outputs,
            self.acks,
            self.sink,
            partitions,
            self.inputs,
            sources,
            FramePolicy(0.2, 2.0),
            now=lambda: NOW,
        )

    async def produce(
        self, topic: Topic, value: bytes | None, ts: int, partition: int = 0, key: bytes | None = None
    ) -> Routed:
        """An input record as the runtime routes it; returns it as routed."""
        source = f"{topic.name}:{partition}"
        record = Routed(topic.name, partition, self.offsets[source], ts, key, value)
        self.offsets[source] += 1
        self.route(record)
        return record

    def route(self, record: Routed) -> None:
        """Route an input record (again, for a router that restarts from an older offset)."""
        route = self.router.route(record)
        if isinstance(route, ToCustomer):
            self.routed[partition_of(route.customer_id, self.partitions)].append(encode(route.record))
        elif isinstance(route, ToEveryPartition):
            for q in range(self.partitions):
                self.routed[q].append(encode(route.record))
        elif isinstance(route, NoCustomer):
            self.scorer.unroutable(route.record)
        self.router.forwarded(record, NOW)

    def watermarks(self, marks: dict[str, int]) -> None:
        """A watermark frame to every routed partition."""
        for q in range(self.partitions):
            self.routed[q].append(encode(Watermarks(marks)))

    async def score(self, checkpoint: bool = True) -> None:
        """Score every routed record not scored yet, partition by partition (a record's token
        is (partition, offset)), then checkpoint unless told not to (a crash just before it)."""
        for q in range(self.partitions):
            while self.scored[q] < len(self.routed[q]):
                offset = self.scored[q]
                self.scored[q] += 1
                await self.scorer.on_frame(q, decode(self.routed[q][offset]), (q, offset), offset)
        if checkpoint:
            await self.scorer.checkpoint()
            self.commit()
        await asyncio.sleep(0)  # let the acknowledgement callbacks run

    def commit(self) -> None:
        """What the runtime's commit does for the changelog: the progress of the checkpoints
        behind the flush (every output was acknowledged at once), and the local store."""
        self.scorer.write_progress(self.scorer.progress_made())
        if self.local is not None:
            self.local.flush_begins()
            self.local.flushed(self.changelog.ends())

    @property
    def states(self) -> dict[str, Stored]:
        return {cid: value for q in range(self.partitions) for cid, value in self.table.scan(q)}
