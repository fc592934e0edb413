"""The customer table's changelog: writing it, and recovering a routed partition from it.

Partition q of the changelog holds, for the customers of routed partition q, their latest
table value (``streams.outbox``), keyed by customer id, and under the empty key, which no
customer id can be, the partition's clock (the last closed day) and progress (the routed
offsets applied, the input offsets taken in: ``scorer.Progress``):
``b"<day or -1> <through> <pending,...> <topic:partition=offset,...>"`` (Kafka topic names
hold neither spaces, commas nor "="). Sharing one partition, a durable clock and progress
imply every state written before them is durable too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.local_store import LocalStore
from streams.logs import event
from streams.outbox import Stored, encode_stored
from streams.scorer import Progress
from streams.sender import Sender
from streams.table import CLOCK_KEY, CustomerTable

log = logging.getLogger("tierstream")

TAIL_POLL_MS = 300  # on Tansu: read past the reported end until a poll this long is empty
PROGRESS_LOG_SECONDS = 5.0  # a long recovery says how far it is this often


class KafkaChangelog:
    """The scorer's changelog port; every record also goes to the local store, if any."""

    def __init__(self, sender: Sender, topic: str, local: LocalStore | None) -> None:
        self.sender = sender
        self.topic = topic
        self.local = local

    def state(self, partition: int, customer_id: str, value: Stored) -> None:
        self._append(partition, customer_id.encode(), encode_stored(value))

    def progress(self, partition: int, day: int | None, progress: Progress) -> None:
        self._append(partition, CLOCK_KEY, encode_progress(day, progress))

    def _append(self, partition: int, key: bytes, value: bytes) -> None:
        self.sender.append(self.topic, partition, key, value)
        if self.local is not None:
            self.local.stage(partition, key, value)


async def _mark_holds(
    consumer: AIOKafkaConsumer, tp: TopicPartition, mark: int, first: int, end: int, short_end_offsets: bool
) -> bool:
    """Whether the changelog partition still holds what a local copy up to ``mark`` was read
    from: the mark lies between its first offset and its end (else the topic is new). A
    broker with short end offsets (Tansu) may report an end below a valid mark: there the
    record before the mark is looked for."""
    if mark < first:
        return False
    if mark <= end:
        return True
    if not short_end_offsets:
        return False
    consumer.seek(tp, mark - 1)
    batches = await consumer.getmany(tp, timeout_ms=TAIL_POLL_MS)
    return any(m.offset >= mark - 1 for m in batches.get(tp, []))


def encode_progress(day: int | None, progress: Progress) -> bytes:
    pending = ",".join(str(o) for o in sorted(progress.pending))
    sources = ",".join(f"{source}={offset}" for source, offset in sorted(progress.sources.items()))
    return f"{-1 if day is None else day} {progress.through} {pending} {sources}".encode()


def decode_progress(value: bytes) -> tuple[int | None, Progress]:
    day, through, pending, sources = value.decode().split(" ")
    return (int(day) if int(day) >= 0 else None), Progress(
        int(through),
        {int(o) for o in pending.split(",") if o},
        {source: int(offset) for source, _, offset in (s.rpartition("=") for s in sources.split(",") if s)},
    )


async def recover(
    options: dict[str, Any], topic: str, partitions: Iterable[int], table: CustomerTable, short_end_offsets: bool
) -> tuple[dict[int, int], dict[int, Progress]]:
    """Read changelog ``partitions`` into ``table``, from where it says its copy ends (the
    beginning for a memory table or a new local store) to their end; returns the clocks and
    progress they hold. ``short_end_offsets``: the broker may report an end offset short of
    the last records (Tansu, README "Development profile"), so read on until nothing comes."""
    tps = [TopicPartition(topic, q) for q in partitions]
    if not tps:
        return {}, {}
    started = logged = time.monotonic()
    consumer = AIOKafkaConsumer(**options)
    await consumer.start()
    records = 0
    try:
        consumer.assign(tps)
        firsts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        waiting = set()
        for tp in tps:
            start = table.recovery_start(tp.partition)
            if start is not None and not await _mark_holds(
                consumer, tp, start, firsts[tp], ends[tp], short_end_offsets
            ):
                event(
                    log,
                    logging.WARNING,
                    "local_copy_not_in_changelog",
                    partition=tp.partition,
                    mark=start,
                    first=firsts[tp],
                    end=ends[tp],
                )
                table.recovery_reset(tp.partition)
                start = None
            if start is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start)
            if ends[tp] > (start or 0):
                waiting.add(tp)
        while waiting or short_end_offsets:
            batches = await consumer.getmany(*tps, timeout_ms=TAIL_POLL_MS)
            for tp, messages in batches.items():
                records += len(messages)
                table.recovered(tp.partition, [(m.key, m.value) for m in messages], messages[-1].offset + 1)
                if messages[-1].offset + 1 >= ends[tp]:
                    waiting.discard(tp)
            if not waiting and not batches:
                break
            if time.monotonic() - logged > PROGRESS_LOG_SECONDS:
                logged = time.monotonic()
                event(log, logging.INFO, "recovering", records=records, seconds=round(logged - started))
    finally:
        await consumer.stop()
    clocks: dict[int, int] = {}
    progress: dict[int, Progress] = {}
    customers: int | None = 0
    for tp in tps:
        n, clock = table.recovery_done(tp.partition)
        customers = None if n is None or customers is None else customers + n
        if clock is not None:
            day, progress[tp.partition] = decode_progress(clock)
            if day is not None:
                clocks[tp.partition] = day
    event(
        log,
        logging.INFO,
        "recovered",
        partitions=",".join(str(tp.partition) for tp in tps),
        records=records,
        customers="unknown" if customers is None else customers,
        seconds=round(time.monotonic() - started, 2),
    )
    return clocks, progress
