"""The Faust topology of one worker: topics, tables, agents, a timer, signals and pages,
wired to the runtime's pieces. Nothing is decided here.

- ``route`` consumes the four input topics and forwards each record, with where it came
  from, to the internal ``routed`` topic (``streams.routing``).
- ``watermarks`` (a timer) tells every routed partition how far this worker has read each
  input partition, when a close may be waiting for it (``streams.gate.FramePolicy``).
- ``score`` consumes ``routed`` with manual acks and hands each record to the
  ``streams.scorer.Scorer``: the close gate, the core, the table, Kafka and Redis.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

import faust

from schemas import topics
from schemas.topics import Topic
from scoring.rules import Rules
from streams import faust_patches, web
from streams.faust_config import faust_options
from streams.frames import Routed, Watermarks, decode, encode
from streams.gate import FramePolicy
from streams.outbox import Stored
from streams.routing import NoCustomer, Router, ToCustomer, ToEveryPartition
from streams.scorer import Scorer
from streams.settings import Settings
from streams.sinks import TierSink

WATERMARK_INTERVAL = 0.2  # seconds between watermark frames while a close may wait for them
WATERMARK_HEARTBEAT = 2.0  # seconds between frames of a worker that sees no eod
# The scorer checkpoints when its input pauses; this timer also does, because at a rebalance
# Faust stops delivering records and then waits for every delivered one to be acknowledged.
CHECKPOINT_INTERVAL = 0.05


class _KafkaOutputs:
    """The scorer's output port: Faust topics, one per output topic."""

    def __init__(self, by_name: dict[str, faust.types.TopicT]) -> None:
        self.by_name = by_name

    async def send(self, topic: Topic, key: bytes | None, value: bytes) -> asyncio.Future[Any]:
        # Faust's FutureMessage: an asyncio future resolved when the broker acknowledges
        return cast(asyncio.Future[Any], await self.by_name[topic.name].send(key=key, value=value))


class _TableChangelog:
    """The scorer's changelog port: a Faust table's changelog, partition given explicitly.
    The scorer reads and writes the table's store in memory (``table.data``) and sends each
    changed customer once per checkpoint; ``table[key] = value`` would send a record per
    write, filed under the partition of whatever event Faust holds as current."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def send(self, partition: int, customer_id: str, value: Stored) -> None:
        self.table.send_changelog(partition, customer_id, value)


class _StreamAcks:
    """The scorer's acknowledgement port: the ``score`` agent's stream."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.stream: Any = None  # set when the agent starts

    async def ack(self, token: Any) -> None:
        await self.stream.ack(token)

    def keep(self, token: Any) -> None:
        faust_patches.keep_unacked(self.app.consumer, token)


class Pipeline:
    """The Faust app of one worker, built from settings, rules and a Redis sink (after
    ``streams.worker.build`` has installed Faust's patches and the table codec)."""

    def __init__(
        self,
        settings: Settings,
        rules: Rules,
        sink: TierSink,
        input_partitions: dict[str, int],
        replication: int = 1,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.now = now
        prefix = settings.topic_prefix
        inputs = {t.full_name(prefix): t for t in topics.INPUTS}
        self.app = faust.App(settings.app_id, **faust_options(settings, replication))
        n = settings.partitions
        self.inputs = self._bytes_topic(*inputs)
        self.routed = self._bytes_topic(f"{prefix}{settings.app_id}-routed", partitions=n, internal=True)
        outputs = {t.name: self._bytes_topic(t.full_name(prefix), partitions=n) for t in topics.OUTPUTS}
        # Faust takes a table's codec from its value type, for writing and for recovery
        states = self.app.Table("customer-state", partitions=settings.partitions, value_type=Stored)
        clocks = self.app.Table("clock", partitions=settings.partitions)
        self.eod_topic = topics.EOD.full_name(prefix)
        self.router = Router(inputs)
        self.frames = FramePolicy(WATERMARK_INTERVAL, WATERMARK_HEARTBEAT)
        self.acks = _StreamAcks(self.app)
        self.scorer = Scorer(
            rules,
            states.data,
            _TableChangelog(states),
            clocks,
            _KafkaOutputs(outputs),
            self.acks,
            sink,
            settings.partitions,
            inputs,
            frozenset(f"{name}:{p}" for name, n in input_partitions.items() for p in range(n)),
            self.frames,
            now,
        )
        self._first_offset: dict[int, int] = {}  # per routed partition, since it was assigned
        self.app.agent(self.inputs, name="route")(self._route)
        self.app.agent(self.routed, name="score")(self._score)
        self.app.timer(WATERMARK_INTERVAL)(self._send_watermarks)
        self.app.timer(CHECKPOINT_INTERVAL)(self.scorer.checkpoint)
        self.app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]  # mode's stub wants a bare function
        self.app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        web.add_pages(self)

    def _bytes_topic(self, *names: str, **options: Any) -> Any:
        """Records are bytes both ways: we frame and decode them ourselves."""
        return self.app.topic(*names, key_serializer="raw", value_serializer="raw", **options)

    async def _route(self, stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            ts = round(m.timestamp * 1000) if m.timestamp else 0
            record = Routed(m.topic, m.partition, m.offset, ts, m.key, m.value)
            route = self.router.route(record)
            if isinstance(route, ToCustomer):
                await self.routed.send(key=route.customer_id.encode(), value=encode(route.record))
            elif isinstance(route, ToEveryPartition):
                self.frames.saw_eod(ts)
                for q in range(self.settings.partitions):
                    await self.routed.send(value=encode(route.record), partition=q)
            elif isinstance(route, NoCustomer):
                await self.scorer.unroutable(route.record)
            self.router.forwarded(record, self.now())

    async def _score(self, stream: Any) -> None:
        self.acks.stream = stream
        queue = stream.channel.queue  # what the consumer has delivered and the agent not read yet
        async for event in stream.noack().events():
            m = event.message
            self._first_offset.setdefault(m.partition, m.offset)
            await self.scorer.on_frame(m.partition, decode(m.value), event)
            # a batch ends when the input pauses (no wait added to latency) or grows large
            if queue.empty() or self.scorer.due():
                await self.scorer.checkpoint()

    async def _send_watermarks(self) -> None:
        self.scorer.warn_slow_closes(self.settings.close_wait_warning)
        assignment = self.app.consumer.assignment()
        routed = self.routed.get_topic_name()
        # a worker holding a routed partition reads every eod (each is copied to all of them)
        sees_eods = any(tp.topic == routed or tp.topic == self.eod_topic for tp in assignment)
        inputs = {f"{tp.topic}:{tp.partition}": tp for tp in assignment if tp.topic in self.router.inputs}
        now = self.now()
        marks = self.router.watermarks(sorted(inputs), now, lambda s, position: self._caught_up(inputs[s], position))
        if self.frames.due(marks, now, sees_eods):
            payload = encode(Watermarks(marks))
            for q in range(self.settings.partitions):
                await self.routed.send(value=payload, partition=q)

    def _caught_up(self, tp: Any, position: int | None) -> bool:
        consumer: Any = self.app.consumer
        try:
            high = consumer.highwater(tp)
        except Exception:  # not fetched yet or not assigned any more
            return False
        if high is None:
            return False
        if position is None:
            # nothing routed in this run: start from what the group had committed
            committed = getattr(consumer, "_committed_offset", {}).get(tp)
            position = committed if committed is not None else 0
        return bool(position >= high)

    async def _on_revoked(self, sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        revoked = args[0] if args else kwargs.get("revoked", ())
        for tp in revoked:
            if tp.topic == self.routed.get_topic_name():
                self.scorer.revoked(tp.partition)
                self._first_offset.pop(tp.partition, None)

    async def _on_assigned(self, sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        self.frames.rebalanced()
        faust_patches.commit_contiguously(self.app.consumer, self.routed.get_topic_name(), self._first_offset)
        faust_patches.flush_completely(self.app.producer)
