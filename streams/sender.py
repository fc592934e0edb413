"""Sending records in batches we build ourselves, in order per partition.

Each record is appended to the open batch of its topic partition (aiokafka's record batch
builder, written in C) with no await and no future of its own; ``ship`` hands the batches
to the producer, ``flush`` waits until the broker has acknowledged everything shipped. A
record's optional ``on_sent`` callback runs once the broker has it. A batch the producer
gives up on (after its own retries) is fatal, and at once (``on_failure``; the worker's is
``stop_now``): aiokafka sends a partition's next batch when one fails, and a partition that
received records after a gap would break what the scorers count on (``scorer.Progress``:
each routed partition holds a gap-free run of every input partition). A restart replays
from the last commit (outputs counted as sent are in their outboxes).
Per partition, the offset after the last record the broker acknowledged is kept
(``acknowledged``): the local state store's marks.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from streams.logs import event

log = logging.getLogger("tierstream")

OnSent = Callable[[], None]
EXIT_NOT_DELIVERED = 75  # EX_TEMPFAIL: restart it, it replays from its last commit


def stop_now(error: BaseException) -> None:
    """The worker's reaction to a batch the broker never acknowledged: exit before another
    batch of that partition can be sent behind it, and before anything is committed."""
    event(log, logging.CRITICAL, "stopping", reason="batch_not_acknowledged", error=repr(error))
    logging.shutdown()
    os._exit(EXIT_NOT_DELIVERED)


class DeliveryFailed(RuntimeError):
    """The broker never acknowledged a batch."""


@dataclass
class _Batch:
    topic: str
    partition: int
    builder: Any  # aiokafka BatchBuilder
    on_sent: list[OnSent] = field(default_factory=list)


class Sender:
    def __init__(self, producer: Any, on_failure: Callable[[BaseException], None]) -> None:
        """``on_failure``: called with the error as soon as a batch failed, before the
        producer may send another."""
        self.producer = producer  # a started AIOKafkaProducer
        self.on_failure = on_failure
        self._open: dict[tuple[str, int], _Batch] = {}
        self._full: list[_Batch] = []  # built before the open batch of the same partition
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._failure: BaseException | None = None
        self._ends: dict[tuple[str, int], int] = {}  # offset after the last record acknowledged
        # batches of one partition reach the producer in the order they were built
        self._shipping = asyncio.Lock()

    def append(
        self, topic: str, partition: int, key: bytes | None, value: bytes, on_sent: OnSent | None = None
    ) -> None:
        batch = self._open.get((topic, partition))
        if batch is None:
            batch = self._open[(topic, partition)] = _Batch(topic, partition, self.producer.create_batch())
        if batch.builder.append(key=key, value=value, timestamp=None) is None:  # full
            self._full.append(batch)
            batch = self._open[(topic, partition)] = _Batch(topic, partition, self.producer.create_batch())
            if batch.builder.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"a record of {len(value)} bytes is larger than a batch may be")
        if on_sent is not None:
            batch.on_sent.append(on_sent)

    def pending(self) -> bool:
        return bool(self._open or self._full)

    async def ship(self, topics: Collection[str] | None = None) -> None:
        """Hand every batch built so far to the producer (it sends them after its linger);
        ``topics``: only those of these topics (whole partitions: their order is kept)."""
        async with self._shipping:
            if topics is None:
                batches, self._full = [*self._full, *self._open.values()], []
                self._open = {}
            else:
                batches = [b for b in [*self._full, *self._open.values()] if b.topic in topics]
                self._full = [b for b in self._full if b.topic not in topics]
                self._open = {k: b for k, b in self._open.items() if b.topic not in topics}
            for b in batches:
                # closed: the producer sends it at once; an open one would wait out the
                # producer's linger, and hold the next batch of its partition meanwhile
                b.builder.close()
                future = await self.producer.send_batch(b.builder, b.topic, partition=b.partition)
                self._in_flight.add(future)
                future.add_done_callback(partial(self._delivered, b))

    async def flush(self, topics: Collection[str] | None = None) -> None:
        """Ship (``topics``: as ``ship``), then wait until the broker has acknowledged every
        batch shipped; raise if one failed."""
        await self.ship(topics)
        if self._in_flight:
            await asyncio.wait(list(self._in_flight))
        self.check()

    def acknowledged(self, topic: str) -> dict[int, int]:
        """Per partition of ``topic``, the offset after the last record the broker acknowledged."""
        return {p: end for (t, p), end in self._ends.items() if t == topic}

    def check(self) -> None:
        if self._failure is not None:
            raise DeliveryFailed("the broker did not acknowledge a batch") from self._failure

    def _delivered(self, batch: _Batch, future: asyncio.Future[Any]) -> None:
        self._in_flight.discard(future)
        error = None if future.cancelled() else future.exception()
        if future.cancelled() or error is not None:
            event(
                log,
                logging.ERROR,
                "batch_not_acknowledged",
                topic=batch.topic,
                partition=batch.partition,
                error=repr(error),
            )
            self._failure = self._failure or error or asyncio.CancelledError()
            if error is not None:  # cancelled: the producer stops, nothing is sent after it
                self.on_failure(error)
            return
        key = (batch.topic, batch.partition)
        # batches of a partition are acknowledged in order; max() all the same
        self._ends[key] = max(self._ends.get(key, 0), future.result().offset + batch.builder.record_count())
        for callback in batch.on_sent:
            callback()
