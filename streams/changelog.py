"""The customer table's changelog: writing it, and recovering a routed partition from it.

Partition q of the changelog holds, for the customers of routed partition q, their latest
table value (``streams.outbox``), keyed by customer id, and under the empty key, which no
customer id can be, the partition's clock (the last closed day) and progress (the routed
offsets applied: ``scorer.Progress``): ``b"<day or -1> <through> <pending,...>"``. Sharing
one partition, a durable clock and progress imply every state written before them is
durable too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.outbox import Stored, decode_stored, encode_stored
from streams.scorer import Progress
from streams.sender import Sender

log = logging.getLogger("tierstream")

CLOCK_KEY = b""  # customer ids have one character at least (the input schemas)
TAIL_POLL_MS = 300  # on Tansu: read past the reported end until a poll this long is empty


class KafkaChangelog:
    """The scorer's changelog port."""

    def __init__(self, sender: Sender, topic: str) -> None:
        self.sender = sender
        self.topic = topic

    def state(self, partition: int, customer_id: str, value: Stored) -> None:
        self.sender.append(self.topic, partition, customer_id.encode(), encode_stored(value))

    def progress(self, partition: int, day: int | None, progress: Progress) -> None:
        pending = ",".join(str(o) for o in sorted(progress.pending)).encode()
        value = b"%d %d %s" % (-1 if day is None else day, progress.through, pending)
        self.sender.append(self.topic, partition, CLOCK_KEY, value)


async def recover(
    options: dict[str, Any], topic: str, partitions: Iterable[int], short_end_offsets: bool
) -> tuple[dict[str, Stored], dict[int, int], dict[int, Progress]]:
    """Read changelog ``partitions`` from their start to their end: the states and clocks
    they hold. ``short_end_offsets``: the broker may report an end offset short of the
    last records (Tansu, README "Development profile"), so read on until nothing comes."""
    tps = [TopicPartition(topic, q) for q in partitions]
    if not tps:
        return {}, {}, {}
    started = time.monotonic()
    latest: dict[tuple[int, bytes], bytes] = {}  # decode only the value that wins
    consumer = AIOKafkaConsumer(**options)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        waiting = {tp for tp in tps if ends[tp] > 0}
        records = 0
        while waiting or short_end_offsets:
            batches = await consumer.getmany(*tps, timeout_ms=TAIL_POLL_MS)
            for tp, messages in batches.items():
                records += len(messages)
                for m in messages:
                    latest[(tp.partition, m.key)] = m.value
                if messages[-1].offset + 1 >= ends[tp]:
                    waiting.discard(tp)
            if not waiting and not batches:
                break
    finally:
        await consumer.stop()
    states: dict[str, Stored] = {}
    clocks: dict[int, int] = {}
    progress: dict[int, Progress] = {}
    for (q, key), value in latest.items():
        if key == CLOCK_KEY:
            day, through, pending = value.split(b" ")
            if int(day) >= 0:
                clocks[q] = int(day)
            progress[q] = Progress(int(through), {int(o) for o in pending.split(b",") if o})
        else:
            states[key.decode()] = decode_stored(value)
    log.info(
        "event=recovered partitions=%s records=%d customers=%d seconds=%.2f",
        ",".join(str(tp.partition) for tp in tps),
        records,
        len(states),
        time.monotonic() - started,
    )
    return states, clocks, progress
