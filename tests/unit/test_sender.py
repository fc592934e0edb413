"""The sender's promises: batches per partition in the order they were built, callbacks
only for what the broker acknowledged, and a failed batch is reported at once and never passes a flush."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch
from aiokafka.structs import RecordMetadata

from streams.sender import DeliveryFailed, Sender


class Broker:
    """What the sender sees of aiokafka's producer; the test decides each batch's fate."""

    def __init__(self, batch_size: int = 16_384) -> None:
        self.batch_size = batch_size
        self.received: list[tuple[str, int, list[bytes]]] = []
        self.futures: list[asyncio.Future[Any]] = []
        self.base: list[int] = []  # each batch's first offset in its partition
        self.ends: dict[tuple[str, int], int] = {}

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0)

    async def send_batch(self, builder: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future[Any]:
        # an open batch would wait out aiokafka's linger and hold up its partition's next one
        assert builder.closed(), "batches must be handed over closed"
        buffer = builder._builder.build()
        values = [bytes(r.value) for r in DefaultRecordBatch(bytes(buffer))]
        self.received.append((topic, partition, values))
        self.base.append(self.ends.get((topic, partition), 0))
        self.ends[(topic, partition)] = self.base[-1] + len(values)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future

    def ack(self, i: int) -> None:
        """The broker acknowledges batch ``i`` (aiokafka's result: its base offset)."""
        self.futures[i].set_result(
            RecordMetadata(self.received[i][0], self.received[i][1], None, self.base[i], -1, 0, 0)
        )


def unexpected(error: BaseException) -> None:
    raise AssertionError(f"no batch should fail here: {error!r}")


def test_batches_keep_the_order_of_a_partition_even_when_one_fills_up() -> None:
    async def run() -> None:
        broker = Broker(batch_size=300)
        sender = Sender(broker, unexpected)
        for i in range(8):
            sender.append("t", i % 2, None, b"%03d" % i + b"x" * 60)
        await sender.ship()
        by_partition: dict[int, list[bytes]] = {}
        for _, p, values in broker.received:
            by_partition.setdefault(p, []).extend(v[:3] for v in values)
        assert by_partition == {0: [b"000", b"002", b"004", b"006"], 1: [b"001", b"003", b"005", b"007"]}
        assert len(broker.received) > 2  # some partition needed a second batch

    asyncio.run(run())


def test_callbacks_run_for_acknowledged_batches_and_a_failure_stops_at_once() -> None:
    async def run() -> None:
        broker = Broker()
        failures: list[BaseException] = []
        sender = Sender(broker, failures.append)
        sent: list[str] = []
        sender.append("out", 0, b"c1", b"v1", lambda: sent.append("c1"))
        sender.append("out", 1, b"c2", b"v2", lambda: sent.append("c2"))
        await sender.ship()
        broker.ack(0)
        gone = ConnectionError("gone")
        broker.futures[1].set_exception(gone)
        await asyncio.sleep(0)  # the future's callbacks
        # told before anything else runs: aiokafka would send the partition's next batch
        assert failures == [gone]
        with pytest.raises(DeliveryFailed):
            await sender.flush()
        assert sent == ["c1"]  # the other stays in its customer's outbox

    asyncio.run(run())


def test_the_offsets_acknowledged_are_known_per_partition() -> None:
    async def run() -> None:
        broker = Broker(batch_size=300)
        sender = Sender(broker, unexpected)
        for i in range(8):
            sender.append("log", i % 2, None, b"%03d" % i + b"x" * 60)
        sender.append("other", 0, None, b"o")
        await sender.ship()
        for i, (topic, p, _) in enumerate(broker.received):
            if (topic, p) != ("log", 1) or broker.base[i] == 0:  # partition 1's second batch is not
                broker.ack(i)
        await asyncio.sleep(0)
        first_of_1 = next(len(v) for t, p, v in broker.received if (t, p) == ("log", 1))
        assert sender.acknowledged("log") == {0: 4, 1: first_of_1} and first_of_1 < 4
        assert sender.acknowledged("other") == {0: 1}

    asyncio.run(run())


def test_shipping_some_topics_keeps_the_others_batches_in_order() -> None:
    async def run() -> None:
        broker = Broker(batch_size=300)
        sender = Sender(broker, unexpected)
        for i in range(6):
            sender.append("log", 0, None, b"%03d" % i + b"x" * 60)
            sender.append("out", 0, None, b"%03d" % i + b"y" * 60)
        await sender.ship(topics={"log"})
        assert {t for t, _, _ in broker.received} == {"log"} and sender.pending()
        await sender.ship()
        out = [v[:3] for t, _, values in broker.received if t == "out" for v in values]
        assert out == [b"%03d" % i for i in range(6)]  # the full batch first, then the open one

    asyncio.run(run())
