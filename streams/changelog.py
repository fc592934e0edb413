"""The customer table's changelog: writing it, and recovering a routed partition from it.

Partition q of the changelog holds, for the customers of routed partition q, their latest
table value (``streams.outbox``), keyed by customer id, and the partition's clock (the last
closed day) under the empty key, which no customer id can be. State and clock sharing one
partition means a durable clock implies every state written before it is durable too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.outbox import Stored, decode_stored, encode_stored
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

    def clock(self, partition: int, day: int) -> None:
        self.sender.append(self.topic, partition, CLOCK_KEY, b"%d" % day)


async def recover(
    options: dict[str, Any], topic: str, partitions: Iterable[int], short_end_offsets: bool
) -> tuple[dict[str, Stored], dict[int, int]]:
    """Read changelog ``partitions`` from their start to their end: the states and clocks
    they hold. ``short_end_offsets``: the broker may report an end offset short of the
    last records (Tansu, README "Development profile"), so read on until nothing comes."""
    tps = [TopicPartition(topic, q) for q in partitions]
    if not tps:
        return {}, {}
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
    for (q, key), value in latest.items():
        if key == CLOCK_KEY:
            clocks[q] = int(value)
        else:
            states[key.decode()] = decode_stored(value)
    log.info(
        "event=recovered partitions=%s records=%d customers=%d seconds=%.2f",
        ",".join(str(tp.partition) for tp in tps),
        records,
        len(states),
        time.monotonic() - started,
    )
    return states, clocks
