"""Routing: which routed partition an input record goes to, and how far this worker has
read each input partition (its watermarks).

Records go to the partition of their customer, whatever the upstream partitioning, so one
customer's events meet in one partition; an ``eod`` is copied to every routed partition;
a record without a usable customer is bad, and says so right here. Pure: the runtime
sends what ``Router.route`` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache

from aiokafka.partitioner import murmur2

from schemas.topics import Topic
from scoring.parsing import customer_of
from streams.frames import Routed

IDLE_AFTER_MS = 500  # an input partition read to its end this long ago is idle


@lru_cache(maxsize=1 << 20)  # murmur2 is pure Python; a customer's partition never changes
def partition_of(customer_id: str, partitions: int) -> int:
    """The routed partition of a customer: Kafka's default partitioner on the key."""
    return partition_of_key(customer_id.encode(), partitions)


def partition_of_key(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (murmur2 of the key bytes)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, slots=True)
class ToCustomer:
    """Send the record to its customer's routed partition (keyed by the customer)."""

    customer_id: str
    record: Routed


@dataclass(frozen=True, slots=True)
class ToEveryPartition:
    record: Routed


@dataclass(frozen=True, slots=True)
class NoCustomer:
    """The record names no customer: it becomes a dead letter where it was read."""

    record: Routed


Route = ToCustomer | ToEveryPartition | NoCustomer


@dataclass
class Router:
    """Routes one worker's input records and remembers how far it has read each input partition."""

    inputs: Mapping[str, Topic]  # input topic as consumed (prefix included) -> its declaration
    last_ts: dict[str, int] = field(default_factory=dict)  # per "topic:partition", latest timestamp routed
    next_offset: dict[str, int] = field(default_factory=dict)
    last_seen: dict[str, float] = field(default_factory=dict)  # when it last routed a record of it

    def route(self, record: Routed) -> Route:
        if not self.inputs[record.topic].keyed_by_customer:  # eod: for every customer
            return ToEveryPartition(replace(record, eod=True))
        cid = customer_of(record.raw)
        return NoCustomer(record) if cid is None else ToCustomer(cid, record)

    def forwarded(self, record: Routed, now: float) -> None:
        """``record`` has been sent on (only then may a watermark cover it)."""
        source = source_of(record.topic, record.partition)
        self.last_ts[source] = max(self.last_ts.get(source, 0), record.ts)
        self.next_offset[source] = record.offset + 1
        self.last_seen[source] = now

    def quiet(self, source: str, now: float) -> bool:
        """Nothing of the input partition was routed for a while (it may be idle)."""
        return now - self.last_seen.get(source, 0.0) > IDLE_AFTER_MS / 1000

    def watermarks(
        self, sources: list[str], now: float, caught_up: Callable[[str, int | None], bool]
    ) -> dict[str, int]:
        """The watermark of each input partition in ``sources``. A partition read to its end
        (``caught_up(source, next offset)``: the end as of ``now`` or later) and quiet for a
        while is idle: whatever comes next is stamped after now minus that while."""
        marks: dict[str, int] = {}
        for source in sources:
            mark = self.last_ts.get(source, 0)
            if self.quiet(source, now) and caught_up(source, self.next_offset.get(source)):
                mark = max(mark, int(now * 1000) - IDLE_AFTER_MS)
            marks[source] = mark
        return marks


@lru_cache(maxsize=4096)
def source_of(topic: str, partition: int) -> str:
    """An input partition's name in watermarks and offsets: "topic:partition"."""
    return f"{topic}:{partition}"
