"""Scoring the routed partitions: the close gate, the core, the customer table and the outputs.

Per routed partition a ``CloseGate`` decides when each record and day close is applied;
the core (``scoring.processor``) decides what it does; this module carries it out: the
state and its outbox go to the table (one changelog record), the outputs to Kafka, the
customer's view to Redis. No business decision is taken here. Faust is reached only
through the small ports below, so the functional tests run it without a broker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any, Protocol

import orjson

from schemas import topics
from schemas.topics import BY_OUTPUT_TYPE, Topic
from scoring.clock import Clock
from scoring.days import format_day
from scoring.events import EndOfDay
from scoring.outputs import Output, Source
from scoring.parsing import parse
from scoring.processor import Processor
from scoring.projection import customer_view
from scoring.rules import Rules
from scoring.state import CustomerState
from scoring.step import Step, Verdict
from streams.frames import Frame, Routed, Watermarks
from streams.gate import Ack, Apply, Close, CloseGate, FramePolicy, Keep
from streams.logs import event
from streams.outbox import Acknowledgements, Encoded, Stored
from streams.routing import partition_of, source_of
from streams.sinks import CustomerWrite, Entry, TierSink
from streams.table import CustomerTable

log = logging.getLogger("tierstream")

CHECKPOINT_WRITES = 500  # customer writes that make a checkpoint due, whatever the input does


class Outputs(Protocol):
    def send(self, topic: Topic, key: bytes | None, value: bytes, on_sent: Callable[[], None] | None) -> None:
        """Queue one output; ``on_sent`` runs once the broker has acknowledged it."""


class Changelog(Protocol):
    def state(self, partition: int, customer_id: str, value: Stored) -> None:
        """Queue the customer's table value for the changelog partition ``partition``."""

    def progress(self, partition: int, day: int | None, progress: Progress) -> None:
        """Queue routed partition ``partition``'s last closed day and progress, behind its states."""


class Acks(Protocol):
    def ack(self, token: Any) -> None:
        """The record of ``token`` is applied: its offset may be committed."""

    def keep(self, token: Any) -> None:
        """The record of ``token`` waits un-acknowledged (a crash replays it)."""


@dataclass(frozen=True)
class Pending:
    """What a gate holds: the consumer's token, the routed record it carried, its offset."""

    token: Any
    record: Routed | None
    offset: int


@dataclass
class Progress:
    """How far a routed partition's records have been applied, written with its clock so a
    partition's next owner (or this worker after a rebalance) replays nothing twice: the
    records up to ``through`` were applied, but those in ``pending`` (held records and
    eods whose close waits), which stay un-committed and are read again.

    ``sources`` covers the other way a record comes twice: a router that crashed (or gave
    its input partition up uncommitted) routes the input records since its last commit
    again, under new routed offsets. Per input partition ("topic:partition") it keeps the
    highest input offset that reached this partition's gate: a router forwards an input
    partition in offset order, and the worker stops at the first batch the broker refuses
    (``streams.sender``), so each partition received a gap-free run of it up to there."""

    through: int = -1
    pending: set[int] = field(default_factory=set)
    sources: dict[str, int] = field(default_factory=dict)

    def seen(self, offset: int, record: Routed) -> bool:
        """Whether the record at routed ``offset`` was taken in before: applied (or sent on
        to be), or a copy routed again of an input record taken in at an earlier offset.
        A pending record is not: it is the original, read again to be applied."""
        if offset in self.pending:
            return False
        source = source_of(record.topic, record.partition)
        return offset <= self.through or record.offset <= self.sources.get(source, -1)

    def copy(self) -> Progress:
        return Progress(self.through, set(self.pending), dict(self.sources))

    def take(self, offset: int, record: Routed | None) -> None:
        """The record at routed ``offset`` goes to the gate now."""
        self.through = max(self.through, offset)
        if record is not None:
            source = source_of(record.topic, record.partition)
            self.sources[source] = max(self.sources.get(source, -1), record.offset)


@dataclass
class _Partition:
    """What the scorer keeps in memory for one routed partition."""

    gate: CloseGate[Pending]
    warned_at: float = 0.0  # when a close that waits too long was last reported


class Scorer:
    """Applies one worker's routed records, partition by partition."""

    def __init__(
        self,
        rules: Rules,
        table: CustomerTable,
        changelog: Changelog,
        clocks: MutableMapping[int, int],
        outputs: Outputs,
        acks: Acks,
        sink: TierSink,
        partitions: int,
        inputs: Mapping[str, Topic],
        sources: frozenset[str],
        frames: FramePolicy,
        now: Callable[[], float] = time.time,
        breathe: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``breathe``: called between slices of a long close, after each checkpoint in it,
        so the runtime ships what was built and commits when one is due (a close of a
        million customers would otherwise hold every record it makes until its end)."""
        self.core = Processor(rules)
        self.rules = rules
        self.table = table  # the changelog gets its changed values at checkpoints
        self.changelog = changelog
        self.clocks = clocks
        self.outputs = outputs
        self.acks = acks
        self.sink = sink
        self.n_partitions = partitions
        self.inputs = inputs
        self.sources = sources  # every input partition of the application: closes wait for all
        self.frames = frames
        self.now = now
        self.breathe = breathe
        self.partitions: dict[int, _Partition] = {}
        self._acked = Acknowledgements()
        self._dirty_progress: set[int] = set()  # partitions whose clock or progress moved
        # per partition, its clock and progress as of its latest checkpoint, not written yet
        self._progress_made: dict[int, tuple[int | None, Progress]] = {}
        # per routed partition held or ever held since start; the runtime drops a given-up one
        self.progress: dict[int, Progress] = {}
        self._writes: list[CustomerWrite] = []  # Redis writes not flushed yet
        self.close_seconds = 0.0  # time spent applying closes (with the checkpoints within them)
        # records stamped before an eod whose close was applied already: each should have
        # been applied before it (a producer clock behind the others by more than the idle
        # slack, or a watermark that promised too much); applied all the same
        self.after_their_close = 0
        self._due: list[Any] = []  # tokens to acknowledge once the writes before them are flushed
        # one checkpoint at a time: Redis must see a customer's writes in sequence order
        self._checkpointing = asyncio.Lock()
        self._behind: asyncio.Task[None] | None = None  # the checkpoint in flight (checkpoint_behind)

    async def checkpoint(self) -> None:
        """Make what has been applied durable, then acknowledge its records: one changelog
        record per changed customer (into its own partition, however many of its events the
        batch held) and the clocks behind them, one Redis pipeline with one guarded script
        call per customer (carrying all its stream entries), then the acks. The changelog
        records wait in the producer, which the runtime flushes before it commits
        acknowledged offsets. The runtime calls this after each batch of records and when
        ``due()``; a crash before it replays the records, and the outboxes (kept until Redis
        has their outputs too) send again what was lost.

        It may also run beside the processing of a record (from a timer): a token is due only
        after everything its record did, so a checkpoint never acknowledges work it lacks."""
        await self._settle()
        async with self._checkpointing:
            await self._checkpoint()

    async def checkpoint_behind(self) -> None:
        """Start a checkpoint and return once it has sent its writes: Redis applies them
        (on another core) while the caller computes the next ones. At most one is in
        flight; the next checkpoint waits for it first, and its error surfaces there."""
        await self._settle()
        self._behind = asyncio.create_task(self._checkpoint_locked())
        await asyncio.sleep(0)  # let it build and send its pipeline before the caller computes on

    async def _checkpoint_locked(self) -> None:
        async with self._checkpointing:
            await self._checkpoint()

    async def _settle(self) -> None:
        """Wait for the checkpoint in flight, if any (raising its error)."""
        behind, self._behind = self._behind, None
        if behind is not None:
            await behind

    async def _checkpoint(self) -> None:
        writes, due, moved = self._writes, self._due, self._dirty_progress
        if not writes and not due and not self.table.changed() and not moved:
            return
        self._writes, self._due, self._dirty_progress = [], [], set()
        for q, cid, value in self.table.take_changed():
            self.changelog.state(q, cid, value)
        for q in moved:
            self._progress_made[q] = (self.clocks.get(q), self.progress[q].copy())
        merged: dict[str, CustomerWrite] = {}
        for w in writes:
            earlier = merged.get(w.customer_id)
            if earlier is not None:  # sequence and as-of day only grow: the latest fields win
                w = CustomerWrite(w.customer_id, w.sequence, w.as_of, w.fields, earlier.entries + w.entries)
            merged[w.customer_id] = w
        await self.sink.write(list(merged.values()))
        for w in merged.values():
            self._acked.redis_has(w.customer_id, [e.sequence for e in w.entries])
        for token in due:
            self.acks.ack(token)

    def progress_made(self) -> dict[int, tuple[int | None, Progress]]:
        """Take the partitions' clocks and progress as of the checkpoints so far. The runtime
        writes them (``write_progress``) once the broker has acknowledged everything those
        checkpoints sent: a durable progress says its records need not be read again, so it
        may not get there before their dead letters (which have no outbox) and outputs."""
        made, self._progress_made = self._progress_made, {}
        return made

    def write_progress(self, made: dict[int, tuple[int | None, Progress]]) -> None:
        """Append ``progress_made``'s records to the changelog, behind their states."""
        for q, (day, progress) in made.items():
            self.changelog.progress(q, day, progress)

    def drop_acknowledged_outboxes(self, partitions: set[int]) -> int:
        """Write again the values (of routed ``partitions``) whose outbox Kafka and Redis have
        both acknowledged, so that a worker recovering them does not send those outputs again
        (an outbox is otherwise dropped at the customer's next write, which may be days away).
        Called before partitions are given up or the worker stops; returns how many."""
        count = 0
        for cid in sorted(self._acked.settled()):
            q = partition_of(cid, self.n_partitions)
            stored = self.table.get(cid) if q in partitions else None
            if stored is not None and stored.outbox:
                self._store(q, cid, stored, stored.state, [])
                count += 1
        return count

    def due(self) -> bool:
        """Enough is pending that a checkpoint should not wait for the input to pause."""
        return len(self._writes) >= CHECKPOINT_WRITES or self.table.changed() >= CHECKPOINT_WRITES

    async def on_frame(self, q: int, frame: Frame, token: Any, offset: int) -> None:
        """The record at ``offset`` of routed partition ``q``, then whatever the gate lets go
        with it. A record taken in before (read again after a rebalance or a crash, or routed
        again) is only acknowledged: by now the clock may have moved, and it would be judged
        again."""
        part = self.partition(q)
        progress = self.progress.setdefault(q, Progress())
        record = frame if isinstance(frame, Routed) else None
        if record is not None and progress.seen(offset, record):
            self._due.append(token)
            return
        progress.take(offset, record)
        self._dirty_progress.add(q)
        if isinstance(frame, Watermarks):
            actions = part.gate.on_watermarks(frame.marks, Pending(token, None, offset))
        elif frame.eod:
            eod = self._eod(q, frame)
            pending = Pending(token, frame, offset)
            if eod is None:
                actions = part.gate.on_other(pending)
            else:
                actions = part.gate.on_eod(
                    eod.business_date, frame.ts, pending, self.clocks.get(q), self.now(), frame.partition
                )
                if any(isinstance(a, Keep) for a in actions):  # its close waits for the watermarks
                    self.frames.saw_eod(frame.ts)  # tell the others to report how far they have read
        else:
            if frame.ts < part.gate.closed_ts:
                self.after_their_close += 1
            actions = part.gate.on_record(frame.ts, Pending(token, frame, offset))
        # Tokens are acked only after what they triggered (a crash replays the rest).
        for action in actions:
            if isinstance(action, Close):
                await self._close(q, action.day)
            elif isinstance(action, Apply):
                assert action.token.record is not None  # the gate applies records only
                self._record(q, action.token.record)
            elif isinstance(action, Ack):
                progress.pending.discard(action.token.offset)
                self._due.append(action.token.token)
            elif isinstance(action, Keep):
                progress.pending.add(action.token.offset)
                self.acks.keep(action.token.token)

    def partition(self, q: int) -> _Partition:
        """The partition's bookkeeping, built on its first record since it was assigned."""
        part = self.partitions.get(q)
        if part is None:
            part = self.partitions[q] = _Partition(CloseGate(self.sources))
            self._resend_outboxes(q)
        return part

    def revoked(self, q: int) -> None:
        """Forget the partition's gate: its held and waiting records are un-acked, and its
        next owner (maybe this worker again) reads them again. The runtime checkpoints and
        commits first."""
        self.partitions.pop(q, None)

    # --- applying --------------------------------------------------------------------

    def _lookup(self, customer_id: str) -> CustomerState | None:
        stored = self.table.get(customer_id)
        return None if stored is None else stored.state

    def _clock(self, q: int) -> Clock:
        return Clock(self.clocks.get(q))

    def _eod(self, q: int, record: Routed) -> EndOfDay | None:
        """The eod a copy carries, or None if it carries none. One copy of each eod record
        (partition 0's) is counted, and dead-lettered if it is bad. It is judged (``future``)
        by the latest day closed or waiting to close here: the clock the eods before it
        leave, as the core, taking one eod at a time, would have it."""
        waiting = [w.day for w in self.partition(q).gate.waiting]
        clock = Clock(max([*waiting, self.clocks[q]] if q in self.clocks else waiting, default=None))
        if q != 0:
            parsed = parse(topics.EOD, record.raw, self.rules)
            if isinstance(parsed, EndOfDay) and not clock.skips_too_far(parsed.business_date, self.rules):
                return parsed
            return None
        result = self.core.record(topics.EOD, _source(record), self._lookup, clock)
        if isinstance(result, EndOfDay):
            return result
        self._publish(None, self._stamp(result.outputs))
        return None

    def unroutable(self, record: Routed) -> None:
        """A record the router found no customer in: its dead letter, counted here."""
        result = self.core.record(self.inputs[record.topic], _source(record), self._lookup, Clock())
        assert isinstance(result, Step) and result.verdict is Verdict.DEAD_LETTER  # valid events name a customer
        self._publish(None, self._stamp(result.outputs))

    def _record(self, q: int, record: Routed) -> None:
        clock = self._clock(q)
        result = self.core.record(self.inputs[record.topic], _source(record), self._lookup, clock)
        assert isinstance(result, Step)  # customer topics never parse as an eod
        values = self._stamp(result.outputs)
        st = result.state
        if result.verdict is Verdict.ACCEPTED:
            assert st is not None
            self._store(q, st.customer_id, self.table.get(st.customer_id), st, values)
        self._publish(None if st is None else st.customer_id, values)
        if result.evaluated and st is not None:
            self._writes.append(self._customer_write(st, clock, values))

    async def _close(self, q: int, business_date: int) -> None:
        started = time.perf_counter()
        try:
            await self._close_days(q, business_date)
        finally:
            self.close_seconds += time.perf_counter() - started

    async def _close_days(self, q: int, business_date: int) -> None:
        for clock in self.core.closes(self._clock(q), business_date):
            assert clock.closed is not None
            customers = 0
            for cid, stored in self.table.scan(q):
                customers += 1
                step = self.core.close(stored.state, clock)
                if not step.evaluated:
                    continue
                values = self._stamp(step.outputs)
                # a silent day leaves most states as they were: the changelog has them already
                # (an outbox is written again, less what was acknowledged, so it does not linger)
                if step.changed or stored.outbox:
                    self._store(q, cid, stored, stored.state, values)
                self._publish(cid, values)
                self._writes.append(self._customer_write(stored.state, clock, values))
                if self.due():
                    await self.checkpoint_behind()
                    if self.breathe is not None:
                        await self.breathe()
            # after its customers: a durable clock says the whole close is (one partition)
            self.clocks[q] = clock.closed
            self._dirty_progress.add(q)
            event(log, logging.INFO, "day_closed", partition=q, day=format_day(clock.closed), customers=customers)

    def _resend_outboxes(self, q: int) -> None:
        """Outputs a recovered state counts as sent but Kafka never acknowledged: send them
        again (same event_id; Redis applies nothing twice)."""
        clock = self._clock(q)
        resent = 0
        for cid, stored in self.table.scan(q, only_outboxes=True):
            values = stored.pending()
            self._publish(cid, values)
            self._writes.append(self._customer_write(stored.state, clock, values, fresh=False))
            resent += 1
        if resent:
            event(log, logging.INFO, "outboxes_resent", partition=q, customers=resent)

    # --- outputs ---------------------------------------------------------------------

    def _store(self, q: int, cid: str, old: Stored | None, state: CustomerState, values: list[Encoded]) -> None:
        self.table.put(q, cid, self._acked.next_value(cid, old, state, values))

    def _stamp(self, outputs: list[Output]) -> list[Encoded]:
        stamp = rfc3339(self.now())
        for out in outputs:
            out.value["emitted_at"] = stamp
        return [(out.value, orjson.dumps(out.value)) for out in outputs]

    def _publish(self, cid: str | None, values: list[Encoded]) -> None:
        """Send outputs; note each one of the customer's that Kafka acknowledges (until
        then it stays in the customer's outbox)."""
        for v, raw in values:
            key = None if v["customer_id"] is None else v["customer_id"].encode()
            on_sent = None
            if cid is not None and v["sequence"] is not None:
                on_sent = partial(self._acked.kafka_has, cid, v["sequence"])
            self.outputs.send(BY_OUTPUT_TYPE[v["type"]], key, raw, on_sent)

    def _customer_write(
        self, st: CustomerState, clock: Clock, values: list[Encoded], fresh: bool = True
    ) -> CustomerWrite:
        """The customer's Redis write; ``fresh``: ``values`` were made by this evaluation
        (so a snapshot they carry is the view's own)."""
        metrics = next((v["metrics"] for v, _ in values if "metrics" in v), None) if fresh else None
        fields = customer_view(st, clock, self.rules, metrics)
        fields["updated_at"] = rfc3339(self.now())
        entries = []
        for v, raw in values:
            topic = BY_OUTPUT_TYPE[v["type"]]
            if topic.redis_stream is not None:
                entries.append(Entry(topic.redis_stream, v["sequence"], v["event_id"], raw, topic.redis_channel))
        return CustomerWrite(st.customer_id, st.sequence, fields["as_of"], fields, entries)

    # --- watching the gates ----------------------------------------------------------

    def held(self) -> int:
        return sum(len(p.gate.held) for p in self.partitions.values())

    def pending_closes(self) -> int:
        """Day closes waiting for the input watermarks, over this worker's partitions."""
        return sum(len(p.gate.waiting) for p in self.partitions.values())

    def eod_copies(self) -> dict[int, dict[int, int]]:
        """The eod copies seen of every day whose close waits here: day -> eod partition ->
        the copy's timestamp (ms). Input records stamped after them would be held (the
        runtime's back-pressure)."""
        copies: dict[int, dict[int, int]] = {}
        for part in self.partitions.values():
            for w in part.gate.waiting:
                copies.setdefault(w.day, {}).update(w.copies)
        return copies

    def lowest_watermarks(self) -> dict[int, int]:
        """Per routed partition whose gate has heard from every input partition, the lowest
        of their watermarks (ms): no close here can pass it."""
        out = {}
        for q, part in self.partitions.items():
            marks = part.gate.watermarks
            if self.sources <= marks.keys():
                out[q] = min(marks[s] for s in self.sources)
        return out

    def closes_waiting(self) -> list[dict[str, Any]]:
        """Every waiting close: its day, how long it has waited, and the input partition
        whose watermark holds it back (with that watermark, -1 if it never reported)."""
        now = self.now()
        out = []
        for q, part in sorted(self.partitions.items()):
            source, mark = _holdup(part.gate)
            for w in part.gate.waiting:
                out.append(
                    {
                        "partition": q,
                        "day": format_day(w.day),
                        "waiting_seconds": round(now - w.since, 1),
                        "eod_timestamp_ms": w.ts,
                        "held_back_by": source,
                        "watermark_ms": mark,
                    }
                )
        return out

    def warn_slow_closes(self, bound: float) -> None:
        """A close that waits longer than ``bound`` seconds is logged, naming the input
        partition that holds it back, once per bound while it waits."""
        now = self.now()
        for q, part in self.partitions.items():
            waiting = part.gate.waiting
            if waiting and now - waiting[0].since > bound and now - part.warned_at > bound:
                part.warned_at = now
                source, mark = _holdup(part.gate)
                event(
                    log,
                    logging.WARNING,
                    "close_waiting",
                    partition=q,
                    day=format_day(waiting[0].day),
                    waiting_seconds=round(now - waiting[0].since),
                    held_back_by=source,
                    watermark_ms=mark,
                    eod_timestamp_ms=waiting[0].ts,
                )


def _source(record: Routed) -> Source:
    return Source(record.topic, record.partition, record.offset, record.key, record.raw)


def _holdup(gate: CloseGate[Pending]) -> tuple[str | None, int]:
    """The input partition holding a gate's oldest close back and its watermark (-1: none yet)."""
    source = gate.holding_back()
    return source, gate.watermarks.get(source or "", -1)


def rfc3339(now: float) -> str:
    """Wall-clock time as the outputs' ``emitted_at`` and the hash's ``updated_at``."""
    seconds = int(now)
    micros = int((now - seconds) * 1_000_000)
    return _second(seconds) + f".{micros:06d}Z"


@lru_cache(maxsize=4)
def _second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
