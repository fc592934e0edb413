"""One worker's runtime: the Kafka clients, the loop that routes and scores, rebalances,
commits, watermarks. Nothing is decided here.

One consumer (in the application's group) reads the four input topics and the internal
``routed`` topic in batches (``getmany``). Input records are routed (``streams.routing``)
into per-partition batches of the routed topic; routed records go to the
``streams.scorer.Scorer``: the close gate, the core, the customer table, Kafka and Redis.
After each batch the scorer starts a checkpoint (changelog, Redis, acknowledgements) that
completes while the next batch is fetched and scored; every
``COMMIT_INTERVAL`` and before partitions are given up the producer is flushed and the
offsets committed: input offsets up to what has been routed, routed offsets up to the first
record not applied (``gate.committable``). A timer sends watermarks when a close may wait
for them (``streams.gate.FramePolicy``).

A routed partition's customer states live in the customer table (``streams.table``: in
memory, or in a local RocksDB store with a cache); its changelog partition is read when the
partition is assigned — from the beginning into memory, from the local store's mark into
the store — unless this worker held it until the rebalance that gave it back.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from schemas import topics
from schemas.topics import Topic
from scoring.events import EndOfDay
from scoring.parsing import parse
from scoring.rules import Rules
from streams import changelog
from streams.frames import Routed, Watermarks, decode, encode
from streams.gate import Ahead, FramePolicy, committable, gap_at, pause_limit
from streams.kafka_config import (
    changelog_topic,
    consumer_options,
    producer_options,
    recovery_options,
    routed_topic,
    ship_interval,
)
from streams.local_store import LocalStore
from streams.logs import event
from streams.routing import (
    NoCustomer,
    Router,
    ToCustomer,
    ToEveryPartition,
    partition_of,
    partition_of_key,
    source_of,
)
from streams.scorer import Scorer
from streams.sender import OnSent, Sender, stop_now
from streams.settings import Settings
from streams.sinks import TierSink
from streams.table import CustomerTable, MemoryTable, StoreTable

log = logging.getLogger("tierstream")

WATERMARK_INTERVAL = 0.2  # seconds between watermark frames while a close may wait for them
WATERMARK_HEARTBEAT = 2.0  # seconds between frames of a worker that sees no eod
COMMIT_INTERVAL = 1.0  # seconds between offset commits (each waits for the producer)
MAX_RECORDS = 2_000  # records per batch: a batch is what arrived, cut at this size
POLL_MS = 50  # how long an idle worker waits for records before it looks around
# seconds a routed partition may show the same skipped offset before it is taken as a hole
# (``_followed_on``); on Apache Kafka none ever shows, on Tansu it is filled within a fetch or two
GAP_PATIENCE = 30.0
# seconds an eod copy routed here is remembered at most until this worker's scorer reads it
# back (one that holds no routed partition never does); under load the round trip took > 2 s
EOD_ROUND_TRIP = 30.0


class _Outputs:
    """The scorer's output port: output topics, partitioned like Kafka's default partitioner."""

    def __init__(self, sender: Sender, names: dict[str, str], partitions: dict[str, int]) -> None:
        self.sender = sender
        self.names = names  # topic name -> as produced (prefix included)
        self.partitions = partitions  # as produced -> partition count
        self._spread = itertools.count()  # records without a key go round the partitions

    def send(self, topic: Topic, key: bytes | None, value: bytes, on_sent: OnSent | None) -> None:
        name = self.names[topic.name]
        n = self.partitions[name]
        p = partition_of_key(key, n) if key is not None else next(self._spread) % n
        self.sender.append(name, p, key, value, on_sent)


class _RoutedOffsets:
    """The scorer's acknowledgement port, and the routed offsets a worker may commit."""

    def __init__(self) -> None:
        self.base: dict[int, int] = {}  # per routed partition: first offset not committed
        self.acked: dict[int, list[int]] = {}
        self.next: dict[int, int] = {}  # per routed partition: the offset after the last read

    def read(self, q: int, offset: int) -> None:
        self.base.setdefault(q, offset)  # the first record read since the partition was assigned
        self.next[q] = offset + 1

    def ack(self, token: tuple[int, int]) -> None:
        q, offset = token
        self.acked.setdefault(q, []).append(offset)

    def keep(self, token: tuple[int, int]) -> None:
        pass  # not acked: the commit stops before it

    def committable(self) -> dict[int, int]:
        """Per partition, the offset to commit now (moves the base there)."""
        out = {}
        for q, acked in self.acked.items():
            end = committable(acked, self.base.get(q))
            if end is not None:
                del acked[: end - self.base[q]]
                self.base[q] = out[q] = end
        return out

    def forget(self, q: int) -> None:
        self.base.pop(q, None)
        self.acked.pop(q, None)
        self.next.pop(q, None)


class Runtime(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """The worker: built from settings, rules and a Redis sink; ``run`` until ``stop``."""

    def __init__(
        self,
        settings: Settings,
        rules: Rules,
        sink: TierSink,
        partition_counts: dict[str, int],
        now: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.now = now
        prefix = settings.topic_prefix
        self.inputs = {t.full_name(prefix): t for t in topics.INPUTS}
        self.routed = routed_topic(settings)
        self.eod_topic = topics.EOD.full_name(prefix)
        self.changelog = changelog_topic(settings)
        self.n = settings.partitions
        self.consumer = AIOKafkaConsumer(**consumer_options(settings))
        self.producer = AIOKafkaProducer(**producer_options(settings))
        self.sender = Sender(self.producer, stop_now)
        self.sink = sink
        self.local: LocalStore | None = None
        self.table: CustomerTable = MemoryTable(self.n)
        if settings.state_store == "rocksdb":
            self.local = LocalStore(settings.local_store_path, f"{self.changelog} partitions={self.n}")
            self.table = StoreTable(self.n, self.local, settings.state_cache)
        self.clocks: dict[int, int] = {}
        self.router = Router(self.inputs)
        self.frames = FramePolicy(WATERMARK_INTERVAL, WATERMARK_HEARTBEAT)
        self.offsets = _RoutedOffsets()
        outputs = {t.name: t.full_name(prefix) for t in topics.OUTPUTS}
        self.scorer = Scorer(
            rules,
            self.table,
            changelog.KafkaChangelog(self.sender, self.changelog, self.local),
            self.clocks,
            _Outputs(self.sender, outputs, partition_counts),
            self.offsets,
            sink,
            self.n,
            self.inputs,
            frozenset(f"{name}:{p}" for name in self.inputs for p in range(partition_counts[name])),
            self.frames,
            now,
            self._breathe,
        )
        self.assigned: set[TopicPartition] = set()
        self.eod_partitions: list[TopicPartition] = []  # of the assignment: read ahead of the records
        self._revoked: set[int] = set()  # routed partitions given up in the rebalance under way
        self._owned: set[int] = set()  # routed partitions whose states are in memory
        self.in_group = False  # assigned its partitions (maybe none) and ready to read them
        self.recovering = False  # reading the changelog of partitions just assigned
        self.progressed_at = time.monotonic()  # when records were last fetched (readiness)
        # one thing at a time touches the states: a batch, a rebalance, a commit
        self._busy = asyncio.Lock()
        self._committed_at = 0.0
        self._shipped_at = 0.0
        self.ship_interval = ship_interval(settings)
        self._unrouted: list[Any] = []  # customer records fetched before this worker's eods were read
        self._unrouted_since: float | None = None  # when records started waiting for eods
        self._unrouted_warned = 0.0  # when that was last logged
        self._gaps: dict[int, tuple[int, float]] = {}  # routed partition -> (skipped offset, since when)
        self.paused: set[TopicPartition] = set()  # input partitions read ahead of a waiting close
        # (when routed, day, eod partition, Kafka timestamp) of the eod copies routed here and
        # not read back by this worker's scorer yet (``_pause_limit``)
        self._fresh_eods: list[tuple[float, int, int, int]] = []
        self.n_eod = partition_counts[self.eod_topic]  # every eod is written to each: its copies
        self.ahead = Ahead(settings.hold_records)  # routed records the waiting close will hold
        self.held_peak = 0  # the most records the gates have held at once
        self._not_outputs = {self.routed, self.changelog}  # what ships while the outbox fault is armed
        self.stopping = asyncio.Event()

    # --- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe([*self.inputs, self.routed], listener=self)
        watermarks = asyncio.create_task(self._watermark_loop())
        try:
            while not self.stopping.is_set():
                if watermarks.done():
                    watermarks.result()  # the timer died: stop with its error
                eods = self.eod_partitions
                batches = await self.consumer.getmany(*eods, timeout_ms=0) if eods else {}
                wait = POLL_MS if not self.sender.pending() else max(1, int(self._ship_due() * 1000))
                for tp, messages in (await self.consumer.getmany(timeout_ms=wait, max_records=MAX_RECORDS)).items():
                    batches.setdefault(tp, []).extend(messages)
                async with self._busy:
                    await self._process(batches)
                    self._pace()
                    await self._ship()
                    self.sender.check()
                    if time.monotonic() - self._committed_at > COMMIT_INTERVAL:
                        await self._commit()
            async with self._busy:
                await self._settle(set(self.scorer.partitions))
        finally:
            watermarks.cancel()
            await self.consumer.stop()
            await self.producer.stop()
            if self.local is not None:
                self.local.close()

    async def _process(self, batches: dict[TopicPartition, list[Any]]) -> None:
        """Route first and ship what was routed (cheap, and the next hop waits for it), then
        score, then checkpoint."""
        mine = {tp: messages for tp, messages in batches.items() if tp in self.assigned}  # not revoked meanwhile
        if mine:
            self.progressed_at = time.monotonic()
        for tp, messages in mine.items():
            if tp.topic == self.eod_topic:
                for m in messages:
                    self._route(m)
            elif tp.topic != self.routed:
                self._unrouted += messages
        if self._unrouted and await self._eods_read():
            self._route_paced(self._unrouted)
            self._unrouted = []
        await self._ship()  # the next hop waits for these; scoring can wait for the broker
        scored = False
        for tp, messages in mine.items():
            if tp.topic == self.routed:
                q = tp.partition
                for m in self._followed_on(tp, messages):
                    self.offsets.read(q, m.offset)
                    await self.scorer.on_frame(q, decode(m.value), (q, m.offset), m.offset)
                scored = True
        if scored:  # Redis applies this batch's writes while the next batch is fetched
            await self.scorer.checkpoint_behind()

    def _followed_on(self, tp: TopicPartition, messages: list[Any]) -> list[Any]:
        """The fetched records of routed partition ``tp`` up to the first skipped offset
        (``gate.gap_at``); from there it is read again (seek back), as long as the gap lasts
        no longer than ``GAP_PATIENCE`` — a hole that stays is taken as one, with a warning."""
        q = tp.partition
        expected = self.offsets.next.get(q)
        cut = gap_at(expected, [m.offset for m in messages])
        if cut is None or expected is None:
            self._gaps.pop(q, None)
            return messages
        now = time.monotonic()
        offset, since = self._gaps.get(q, (expected, now))
        if offset != expected:  # another gap: its own patience
            since = now
        self._gaps[q] = (expected, since)
        if now - since > GAP_PATIENCE:
            got = messages[cut].offset
            event(log, logging.WARNING, "routed_offsets_skipped", partition=q, expected=expected, got=got)
            self._gaps.pop(q, None)
            return messages
        self.consumer.seek(tp, expected)
        return messages[:cut]

    async def _breathe(self) -> None:
        """Between slices of a long close (``Scorer``): ship, and commit when due, so the
        records it made (and the local store's staged copies) do not pile up."""
        await self._ship()
        if time.monotonic() - self._committed_at > COMMIT_INTERVAL:
            await self._commit()

    def _route_paced(self, records: list[Any]) -> None:
        """Route fetched input records in order, but once more than ``hold_records`` were
        routed at or after the pause limit (``_pace``), each partition only up to its first
        such record; the rest is read again once the partition resumes (seek back), so the
        gates hold at most the bound and one record per partition and limit."""
        self.ahead.moved(self._pause_limit())
        stopped: dict[tuple[str, int], int] = {}
        for m in records:
            if (m.topic, m.partition) in stopped:
                continue
            self._route(m)
            if self.ahead.routed(m.timestamp):
                stopped[(m.topic, m.partition)] = m.offset + 1
        for (topic, partition), offset in stopped.items():
            tp = TopicPartition(topic, partition)
            if tp in self.assigned:
                self.consumer.seek(tp, offset)

    def _pause_limit(self) -> int | None:
        """The timestamp input partitions pause at (``_pace``), None: none pauses."""
        now = time.monotonic()
        copies = self.scorer.eod_copies()
        # the day every routed partition here has closed: its copies were read back here
        clocks = [self.clocks[q] for q in self._owned if q in self.clocks]
        closed = min(clocks) if clocks and len(clocks) == len(self._owned) else None
        self._fresh_eods = [
            (at, day, p, ts)
            for at, day, p, ts in self._fresh_eods
            if now - at < EOD_ROUND_TRIP and p not in copies.get(day, {}) and (closed is None or day > closed)
        ]
        for _, day, p, ts in self._fresh_eods:
            copies.setdefault(day, {})[p] = ts
        return pause_limit(copies, self.n_eod)

    def _pace(self) -> None:
        """Back-pressure: once more than ``hold_records`` were routed ahead of the earliest
        day whose close waits in this worker, or whose eod was just routed (the scorer
        learns of it a round trip later), pause the input partitions read up to that day:
        what they would bring next is stamped after its eod, and would be held in memory
        until the close is applied. They resume once it is. While records wait for the eod
        partitions to be read, every other input partition is paused. So a backlog, whose
        eods are all read first, overlaps a day's close with routing the next while the
        bound allows, and with ``_route_paced`` the gates hold at most the bound and about
        one record per input partition and day (a bound of 0: a day at a time).
        Eod partitions are never paused. The limit is the latest of the day's eod copies,
        known once every eod partition's copy is (``gate.pause_limit``): no close, here or
        in another worker, can then wait for a partition paused here."""
        self.held_peak = max(self.held_peak, self.scorer.held())
        limit = self._pause_limit()
        self.ahead.moved(limit)
        inputs = [tp for tp in self.assigned if tp.topic in self.inputs and tp.topic != self.eod_topic]
        if self._unrouted:
            ahead = set(inputs)
        elif limit is not None and self.ahead.full():
            ahead = {tp for tp in inputs if self.router.last_ts.get(source_of(tp.topic, tp.partition), -1) >= limit}
        else:
            ahead = set()
        if ahead != self.paused:
            if ahead - self.paused:
                self.consumer.pause(*(ahead - self.paused))
            if self.paused - ahead:
                self.consumer.resume(*(self.paused - ahead))
            self.paused = ahead

    def _ship_due(self) -> float:
        """Seconds until the records built so far may be shipped (0: now)."""
        return max(0.0, self._shipped_at + self.ship_interval - time.monotonic())

    async def _ship(self) -> None:
        """Ship the batches built so far, at most once per ``ship_interval``: every ship is
        a record batch per partition it touches, and batches are what a broker pays for
        (Tansu's reads slow down with their number, see kafka_config)."""
        if self.sender.pending() and self._ship_due() == 0:
            await self.sender.ship(self._not_outputs if self._crash_armed() else None)
            self._shipped_at = time.monotonic()

    def _crash_armed(self) -> bool:
        """Tests only (``TIERSTREAM_TEST_CRASH_AFTER_OUTPUTS``): once the worker has made that
        many outputs, outputs are held back, and the next commit makes the states and their
        outboxes durable and kills the process before any of them (or the progress, which
        waits for them) is sent: the window the outboxes cover, on purpose."""
        n = self.settings.crash_after_outputs
        return n is not None and sum(self.scorer.core.counters.outputs.values()) >= n

    async def _eods_read(self) -> bool:
        """This worker has routed every eod its eod partitions hold now. Every eod is written
        to every eod partition, so a worker that routes its customer records only then
        routes each eod ahead of the records stamped after it, into every routed partition,
        whatever order the fetches came back in (at start-up a partition whose position is
        not known yet is fetched late; live, a fetch brought a record produced just after an
        eod without the eod, and the next day's record was scored before the close). So the
        end offsets are asked for after the records were fetched: an eod written before them
        is counted. The group gives each worker some eod partitions (same partition count as
        the inputs)."""
        eods = self.eod_partitions
        if not eods:
            return True
        try:
            ends = await self.consumer.end_offsets(eods)
            for tp in eods:
                if ends[tp] > 0 and await self.consumer.position(tp) < ends[tp]:
                    self._warn_unrouted(tp, ends[tp])
                    return False
        except KafkaError as e:  # a rebalance under way: route them next time
            event(log, logging.INFO, "eod_end_offsets_failed", error=repr(e))
            return False
        self._unrouted_since = None
        return True

    def _warn_unrouted(self, tp: TopicPartition, end: int) -> None:
        """Records wait for an eod partition to be read; say so if it lasts."""
        now = time.monotonic()
        if self._unrouted_since is None:
            self._unrouted_since = now
        elif now - self._unrouted_since > 5 and now - self._unrouted_warned > 5:
            self._unrouted_warned = now
            event(
                log,
                logging.WARNING,
                "records_wait_for_eods",
                partition=source_of(tp.topic, tp.partition),
                end=end,
                waiting_seconds=round(now - self._unrouted_since),
            )

    def _route(self, m: Any) -> None:
        record = Routed(m.topic, m.partition, m.offset, m.timestamp, m.key, m.value)
        route = self.router.route(record)
        if isinstance(route, ToCustomer):
            q = partition_of(route.customer_id, self.n)
            self.sender.append(self.routed, q, route.customer_id.encode(), encode(route.record))
        elif isinstance(route, ToEveryPartition):
            self.frames.saw_eod(record.ts)
            eod = parse(topics.EOD, record.raw, self.rules)
            if isinstance(eod, EndOfDay):  # a bad one is a dead letter (scorer), and closes nothing
                self._fresh_eods.append((time.monotonic(), eod.business_date, record.partition, record.ts))
            frame = encode(route.record)
            for q in range(self.n):
                self.sender.append(self.routed, q, None, frame)
        elif isinstance(route, NoCustomer):
            self.scorer.unroutable(route.record)
        self.router.forwarded(record, self.now())

    async def _commit(self) -> None:
        """Commit what is durable: the acknowledged routed offsets (their changelog records
        and outputs are in the producer, flushed here first) and the routed inputs."""
        offsets = {TopicPartition(self.routed, q): end for q, end in self.offsets.committable().items()}
        for source, end in self.router.next_offset.items():
            topic, _, p = source.rpartition(":")
            offsets[TopicPartition(topic, int(p))] = end
        progress = self.scorer.progress_made()  # of the checkpoints this flush covers
        if self._crash_armed():
            await self.sender.flush(self._not_outputs)
            event(log, logging.WARNING, "crash_injected", outputs_held=self.sender.pending())
            os.kill(os.getpid(), signal.SIGKILL)
        await self.sender.flush()
        # then the progress, behind what it covers: a crash before it is acknowledged
        # replays those records (they find their states; a dead letter is made again)
        self.scorer.write_progress(progress)
        if self.local is not None:
            self.local.flush_begins()
        await self.sender.flush()
        if self.local is not None:  # the changelog has what was staged: the local store may too
            self.local.flushed(self.sender.acknowledged(self.changelog))
        owned = {tp: OffsetAndMetadata(end, "") for tp, end in offsets.items() if tp in self.assigned}
        self._committed_at = time.monotonic()
        if not owned:
            return
        try:
            await self.consumer.commit(owned)
        except (CommitFailedError, IllegalStateError) as e:
            # a rebalance under way: the revoke that follows commits again, or the next
            # owner replays from the last commit (duplicates are ignored)
            event(log, logging.WARNING, "commit_failed", error=repr(e))

    # --- rebalances --------------------------------------------------------------------

    async def _settle(self, partitions: set[int]) -> None:
        """Make everything applied durable, then write again the values of ``partitions``
        whose outputs are all acknowledged by now (their next owner, maybe this worker
        restarted, would send them again), and make that durable too."""
        await self.scorer.checkpoint()
        await self._commit()  # Kafka acknowledges the outputs in the flush
        if self.scorer.drop_acknowledged_outboxes(partitions):
            await self.scorer.checkpoint()
            await self._commit()

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.in_group = False
        async with self._busy:
            await self._settle({tp.partition for tp in revoked if tp.topic == self.routed})
            for tp in revoked:
                if tp.topic == self.routed:
                    self.scorer.revoked(tp.partition)
                    self.offsets.forget(tp.partition)
                    self._gaps.pop(tp.partition, None)
                    self._revoked.add(tp.partition)
                elif tp.topic in self.inputs:
                    self.router.next_offset.pop(source_of(tp.topic, tp.partition), None)
            self.assigned = set()
            self.eod_partitions = []
            self.paused = set()  # a new assignment starts with none paused
            self._unrouted = []  # not routed, not committed: read again from the committed offset

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        async with self._busy:
            self.assigned = set(assigned)
            self.eod_partitions = sorted(tp for tp in self.assigned if tp.topic == self.eod_topic)
            for tp in self.assigned:
                if tp.topic in self.inputs:  # where routing starts: committed, or the reset offset
                    self.router.next_offset[source_of(tp.topic, tp.partition)] = await self.consumer.position(tp)
                elif tp.topic == self.routed:  # where reading starts: a skip of the first batch shows too
                    self.offsets.next[tp.partition] = await self.consumer.position(tp)
            routed = {tp.partition for tp in self.assigned if tp.topic == self.routed}
            # kept: held until this rebalance, so nobody else wrote its changelog since
            kept = routed & self._owned & self._revoked
            for q in self._owned - kept:
                self._drop(q)
            self.recovering = True
            try:
                clocks, progress = await changelog.recover(
                    recovery_options(self.settings),
                    self.changelog,
                    sorted(routed - kept),
                    self.table,
                    short_end_offsets=self.settings.broker_flavor == "tansu",
                )
            finally:
                self.recovering = False
            self.clocks.update(clocks)
            self.scorer.progress.update(progress)
            self._owned, self._revoked = routed, set()
            self.frames.rebalanced()
            self.progressed_at = time.monotonic()  # the time spent rebalancing was no stall
            self.in_group = True

    def _drop(self, q: int) -> None:
        self.table.drop(q)
        self.clocks.pop(q, None)
        self.scorer.progress.pop(q, None)

    # --- watermarks --------------------------------------------------------------------

    async def _watermark_loop(self) -> None:
        while True:
            await asyncio.sleep(WATERMARK_INTERVAL)
            self.scorer.warn_slow_closes(self.settings.close_wait_warning)
            await self._send_watermarks()

    async def _send_watermarks(self) -> None:
        assignment = self.assigned
        # a worker holding a routed partition reads every eod (each is copied to all of them)
        sees_eods = any(tp.topic in (self.routed, self.eod_topic) for tp in assignment)
        inputs = {source_of(tp.topic, tp.partition): tp for tp in assignment if tp.topic in self.inputs}
        now = self.now()
        ends = await self._ends_now([tp for source, tp in inputs.items() if self.router.quiet(source, now)])
        if self.assigned is not assignment:  # a rebalance meanwhile: next time
            return
        marks = self.router.watermarks(sorted(inputs), now, lambda s, read: self._caught_up(inputs[s], read, ends))
        if self.frames.due(marks, now, sees_eods):
            payload = encode(Watermarks(marks))
            for q in range(self.n):
                self.sender.append(self.routed, q, None, payload)

    async def _ends_now(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The partitions' end offsets, asked for now: every record appended before the call
        lies below them. (The highwater of the last fetch may be from long ago: after the
        process stalled — a pause, a swap storm, SIGSTOP — records stamped meanwhile are in
        the partition but not behind it.) Empty if the broker could not say."""
        if not partitions:
            return {}
        try:
            ends: dict[TopicPartition, int] = await self.consumer.end_offsets(partitions)
        except KafkaError as e:  # a rebalance or a broker away: no partition is idle this time
            event(log, logging.INFO, "end_offsets_failed", error=repr(e))
            return {}
        return ends

    def _caught_up(self, tp: TopicPartition, read: int | None, ends: dict[TopicPartition, int]) -> bool:
        """Every record of ``tp`` appended before the ends were asked for has been routed: the
        next offset to route is at the end reported then, and at the last fetch's highwater."""
        high, end = self._highwater(tp), ends.get(tp)
        return high is not None and end is not None and read is not None and read >= max(high, end)

    def _highwater(self, tp: TopicPartition) -> int | None:
        """The partition's end as of its last fetch; None before one, or once not assigned."""
        try:
            high: int | None = self.consumer.highwater(tp)
        except Exception:  # aiokafka asserts the partition is assigned
            return None
        return high

    # --- what the pages show ------------------------------------------------------------

    def lag(self) -> dict[str, int]:
        lag = {}
        for tp in self.assigned:
            if tp.topic not in self.inputs:
                continue
            source = source_of(tp.topic, tp.partition)
            high = self._highwater(tp)
            if high is not None:
                lag[source] = max(0, high - self.router.next_offset.get(source, high))
        return lag

    def owned(self) -> frozenset[int]:
        """The routed partitions whose states this worker holds."""
        return frozenset(self._owned)

    def routed_partitions(self) -> list[int]:
        return sorted(tp.partition for tp in self.assigned if tp.topic == self.routed)
