"""The Faust topology (SPEC sections 3, 6, 7, 8).

Two agents and a timer:

- ``route`` consumes the four input topics. It finds each record's customer and forwards
  the record untouched, with where it came from and its Kafka timestamp, to the internal
  ``routed`` topic keyed by customer, so one customer's events meet in one partition
  whatever the upstream partitioning. ``eod`` records are copied to every routed
  partition. Records without a usable customer become dead letters here.
- ``watermarks`` (a timer) tells every routed partition, for each input partition this
  worker reads, a time W such that every record of that input partition stamped before W
  has been forwarded — only when a close may be waiting for it (``streams/gate.py``).
- ``score`` consumes ``routed`` with manual acks. Per routed partition a ``CloseGate``
  keeps the day closes that wait: a close of D takes effect once every input partition's
  watermark has passed the ``eod`` record's timestamp, and records stamped at or after a
  waiting close are held (un-acked, so a crash replays them) until it has. Everything else
  goes through the scoring core; state lives in a Faust table, outputs go to Kafka and Redis.

No business decision is taken here: the core decides, this module moves bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import faust
import orjson
from aiokafka.partitioner import murmur2
from faust.serializers import codecs
from faust.transport.drivers import aiokafka as faust_aiokafka
from kafka import KafkaConsumer, TopicPartition

from schemas import topics
from schemas.events import EndOfDay, Rejected, parse
from schemas.topics import Topic
from scoring.days import format_day
from scoring.engine import Counters
from scoring.outputs import Output, Source, dead_letter
from scoring.rules import Rules
from scoring.state import CustomerState
from scoring.step import ACCEPTED, DEAD, DUPLICATE, Clock, apply_event, close_day, customer_view
from streams.devstack import free_port
from streams.gate import Close, CloseGate, FramePolicy, committable
from streams.settings import Settings
from streams.sinks import STREAM_OF, CustomerWrite, Entry, TierSink

log = logging.getLogger("tierstream")

REC, EOD, WM = "R", "E", "W"
_TOPIC_OF = {
    "tier_change": topics.TIER_CHANGES.name,
    "rm_alert": topics.RM_ALERTS.name,
    "risk_signal": topics.RISK_SIGNALS.name,
    "dead_letter": topics.DEAD_LETTERS.name,
}
FETCH_WAIT_MS = 10  # Faust hard-codes 1500 ms; Tansu then holds every fetch that long (README, "Development profile")
WATERMARK_INTERVAL = 0.2  # seconds between watermark frames while a close may wait for them
WATERMARK_HEARTBEAT = 2.0  # seconds between frames of a worker that sees no eod
IDLE_AFTER_MS = 500  # an input partition read to its end this long ago is idle


@dataclass
class Stored:
    """A table value: a customer's state and the outputs it counts as sent that Kafka has
    not acknowledged yet. Both travel in one changelog record (a transactional outbox):
    a crash can lose both, and the event is replayed, or keep both, and the outbox is
    sent again on recovery; never the state without its outputs."""

    state: CustomerState
    outbox: list[tuple[int, bytes]] = field(default_factory=list)  # (sequence, value JSON)

    class _options:
        serializer = "tierstate"

    @classmethod
    def from_data(cls, data: Any, preferred_type: Any = None) -> Any:
        """Faust's hook to rebuild a value: the codec has already built it."""
        return data


class StateCodec(codecs.Codec):
    """Stored <-> the state's compact bytes, then one line per outbox entry."""

    def _dumps(self, obj: Any) -> bytes:
        lines = [obj.state.to_bytes()]
        lines += [b"%d %s" % (seq, value) for seq, value in obj.outbox]
        return b"\n".join(lines)

    def _loads(self, s: bytes) -> Any:
        head, *rest = s.split(b"\n")
        outbox = []
        for line in rest:
            seq, _, value = line.partition(b" ")
            outbox.append((int(seq), value))
        return Stored(CustomerState.from_bytes(head), outbox)


codecs.register("tierstate", StateCodec())


def _fast_fetch() -> None:
    """Make Faust's aiokafka consumer return fetched records after FETCH_WAIT_MS."""
    create = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    if getattr(create, "_tierstream", False):
        return

    def patched(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = FETCH_WAIT_MS
        return consumer

    patched._tierstream = True  # type: ignore[attr-defined]
    # no setting exists for it: replace the factory, keep everything else it does
    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = patched  # type: ignore[method-assign]


def _exact_end_offsets(bootstrap: str) -> None:
    """Tansu answers ListOffsets(latest) short when a partition's last batch held several
    records, and Faust then ends table recovery early (README, "Development profile"). Read past the reported
    end of each changelog partition and count what is really there."""
    consumer_class = faust_aiokafka.Consumer
    if getattr(consumer_class.highwaters, "_tierstream", False):
        return
    reported_highwaters = consumer_class.highwaters

    async def highwaters(self: Any, *partitions: Any) -> Any:
        reported = await reported_highwaters(self, *partitions)
        return await asyncio.to_thread(_probe_ends, bootstrap, dict(reported))

    highwaters._tierstream = True  # type: ignore[attr-defined]
    consumer_class.highwaters = highwaters  # type: ignore[method-assign]


def _probe_ends(bootstrap: str, reported: dict[Any, int | None]) -> dict[Any, int | None]:
    wanted = {TopicPartition(tp.topic, tp.partition): tp for tp, end in reported.items() if end is not None}
    if not wanted:
        return reported
    # Tansu holds a fetch for its whole max wait even with data waiting: with the client's
    # default (500 ms) a 300 ms poll came back empty before the records did, the short end
    # was taken for the real one, and a table was recovered without its last batch.
    probe = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=10)
    try:
        probe.assign(list(wanted))
        for ktp, tp in wanted.items():
            probe.seek(ktp, reported[tp])
        ends = dict(reported)
        while batch := probe.poll(timeout_ms=1000):
            for ktp, records in batch.items():
                tp = wanted[ktp]
                ends[tp] = max(ends[tp] or 0, records[-1].offset + 1)
        return ends
    finally:
        probe.close()


def frame(header: list[Any], raw: bytes | None) -> bytes:
    """A routed record: a JSON header line, then the input value's bytes as they came."""
    head = orjson.dumps(header)
    return head if raw is None else head + b"\n" + raw


def unframe(data: bytes) -> tuple[list[Any], bytes | None]:
    head, sep, raw = data.partition(b"\n")
    return orjson.loads(head), (raw if sep else None)


def customer_of(raw: bytes | None) -> str | None:
    """The value's customer_id if it is a non-empty string (it decides the customer)."""
    if not raw:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    cid = value.get("customer_id") if type(value) is dict else None
    return cid if type(cid) is str and cid else None


def partition_of(customer_id: str, partitions: int) -> int:
    """The routed partition of a customer: Kafka's default partitioner on the key."""
    return int(murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions


@dataclass
class _Partition:
    """What the scorer keeps in memory for one routed partition."""

    members: set[str]
    gate: CloseGate[Any]  # tokens are Faust events, acked once applied
    warned_at: float = 0.0  # when a close that waits too long was last reported


class Pipeline:
    """The Faust app of one worker, built from settings, rules and a Redis sink."""

    def __init__(
        self,
        settings: Settings,
        rules: Rules,
        sink: TierSink,
        input_partitions: dict[str, int],
        replication: int = 1,
        now: Callable[[], float] = time.time,
    ) -> None:
        _fast_fetch()
        if settings.broker_flavor == "tansu":
            _exact_end_offsets(settings.bootstrap)
        self.settings = settings
        self.rules = rules
        self.sink = sink
        self.now = now
        self.counters = Counters()
        prefix = settings.topic_prefix
        self.input_by_name: dict[str, Topic] = {t.full_name(prefix): t for t in topics.INPUTS}
        self.eod_topic = topics.EOD.full_name(prefix)
        # every input partition of the application: closes wait for all of them
        self.sources = frozenset(f"{name}:{p}" for name, n in input_partitions.items() for p in range(n))
        self.frames = FramePolicy(WATERMARK_INTERVAL, WATERMARK_HEARTBEAT)
        tansu = settings.broker_flavor == "tansu"
        self.app = faust.App(
            settings.app_id,
            broker=settings.broker,
            store="memory://",
            topic_partitions=settings.partitions,
            topic_replication_factor=replication,
            web_port=settings.web_port or free_port(),  # 0: any free port
            datadir=str(settings.data_dir / "worker"),
            consumer_auto_offset_reset="earliest",
            # Tansu's time to read a partition grows with the square of its number of
            # batches (README, "Development profile"): there, wait longer to batch more.
            producer_linger=0.05 if tansu else 0.005,
            producer_max_batch_size=512 * 1024,  # below Kafka's default message.max.bytes
            # A standby re-reads every changelog record as it is written: on Tansu that
            # is the quadratic read above, for every table write of the other workers.
            table_standby_replicas=0 if tansu else 1,
            # Not producer_max_batch_size=1, the other cure for Tansu's too-small end
            # offsets in table recovery: it made every send its own request and the worker
            # ~20x slower. So on Tansu a restarted or rebalanced worker may recover a table
            # short of its last records (README, "Development profile").
            broker_session_timeout=6 if tansu else 30,
            broker_heartbeat_interval=0.5 if tansu else 3,
            broker_rebalance_timeout=6 if tansu else 60,
            broker_request_timeout=30,
        )
        self._topic = {
            t.name: self.app.topic(
                t.full_name(prefix),
                partitions=settings.partitions,
                key_serializer="raw",
                value_serializer="raw",
            )
            for t in topics.OUTPUTS
        }
        self.inputs = self.app.topic(*self.input_by_name, key_serializer="raw", value_serializer="raw")
        self.routed = self.app.topic(
            f"{prefix}{settings.app_id}-routed",
            partitions=settings.partitions,
            internal=True,
            key_serializer="raw",
            value_serializer="raw",
        )
        # Faust takes a table's codec from its value type, for writing and for recovery
        self.states = self.app.Table("customer-state", partitions=settings.partitions, value_type=Stored)
        self.clocks = self.app.Table("clock", partitions=settings.partitions)
        self._partitions: dict[int, _Partition] = {}
        self._first_offset: dict[int, int] = {}  # per routed partition, since it was assigned
        self._acked: dict[str, set[int]] = {}  # sequences Kafka has acknowledged, per customer
        # router bookkeeping per input partition: latest timestamp and offset routed
        self._last_ts: dict[str, int] = {}
        self._next_offset: dict[str, int] = {}
        self._last_seen: dict[str, float] = {}
        self.app.agent(self.inputs, name="route")(self._route)
        self.app.agent(self.routed, name="score")(self._score)
        self.app.timer(WATERMARK_INTERVAL)(self._send_watermarks)
        self.app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]  # mode's stub wants a bare function
        self.app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        # Faust binds page functions to its View: plain functions, not bound methods
        self.app.page("/health")(lambda view, request: self._health(view))
        self.app.page("/counters")(lambda view, request: self._counters_page(view))

    # --- route --------------------------------------------------------------------

    async def _route(self, stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            source = f"{m.topic}:{m.partition}"
            ts = round(m.timestamp * 1000) if m.timestamp else 0
            raw: bytes | None = m.value
            key = None if m.key is None else m.key.decode("latin-1")
            header = [REC, m.topic, m.partition, m.offset, ts, key]
            if not self.input_by_name[m.topic].keyed_by_customer:  # eod: for every customer
                header[0] = EOD
                self.frames.saw_eod(ts)
                for q in range(self.settings.partitions):
                    await self.routed.send(value=frame(header, raw), partition=q)
            else:
                cid = customer_of(raw)
                if cid is None:
                    # no customer to route to: the record is bad, say why right here
                    self.counters.records_in += 1
                    verdict = parse(self.input_by_name[m.topic], raw, self.rules)
                    assert isinstance(verdict, Rejected)  # a valid customer event has a customer_id
                    src = Source(m.topic, m.partition, m.offset, m.key, raw)
                    await self._send([dead_letter(src, verdict.reason, verdict.error, verdict.value, None, self.rules)])
                else:
                    await self.routed.send(key=cid.encode(), value=frame(header, raw))
            self._last_ts[source] = max(self._last_ts.get(source, 0), ts)
            self._next_offset[source] = m.offset + 1
            self._last_seen[source] = self.now()

    async def _send_watermarks(self) -> None:
        consumer = self.app.consumer
        now = self.now()
        self._warn_slow_closes(now)
        marks: dict[str, int] = {}
        assignment = consumer.assignment()
        routed = self.routed.get_topic_name()
        # a worker holding a routed partition reads every eod (each is copied to all of them)
        sees_eods = any(tp.topic == routed or tp.topic == self.eod_topic for tp in assignment)
        for tp in assignment:
            if tp.topic not in self.input_by_name:
                continue
            source = f"{tp.topic}:{tp.partition}"
            mark = self._last_ts.get(source, 0)
            quiet = now - self._last_seen.get(source, 0.0) > IDLE_AFTER_MS / 1000
            if quiet and self._caught_up(tp, source):
                # read to its end and quiet: whatever comes next is stamped after this
                mark = max(mark, int((now * 1000) - IDLE_AFTER_MS))
            marks[source] = mark
        if not self.frames.due(marks, now, sees_eods):
            return
        payload = frame([WM, marks], None)
        for q in range(self.settings.partitions):
            await self.routed.send(value=payload, partition=q)

    def _caught_up(self, tp: Any, source: str) -> bool:
        try:
            high = self.app.consumer.highwater(tp)
        except Exception:  # not fetched yet or not assigned any more
            return False
        if high is None:
            return False
        position = self._next_offset.get(source)
        if position is None:
            # nothing routed in this run: start from what the group had committed
            committed = getattr(self.app.consumer, "_committed_offset", {}).get(tp)
            position = committed if committed is not None else 0
        return bool(position >= high)

    # --- score --------------------------------------------------------------------

    async def _partition(self, q: int) -> _Partition:
        part = self._partitions.get(q)
        if part is None:
            n = self.settings.partitions
            members = {k for k in self.states if partition_of(k, n) == q}
            part = self._partitions[q] = _Partition(members, CloseGate(self.sources))
            await self._resend_outboxes(q, members)
        return part

    async def _resend_outboxes(self, q: int, members: set[str]) -> None:
        """Outputs a recovered state counts as sent but Kafka never acknowledged: send them
        again (same event_id; Redis applies nothing twice)."""
        clock = self._clock(q)
        writes = []
        for cid in sorted(members):
            stored = self.states.get(cid)
            if stored is None or not stored.outbox:
                continue
            values = [orjson.loads(v) for _, v in stored.outbox]
            await self._publish(cid, values)
            writes.append(self._customer_write(stored.state, clock, values))
        if writes:
            log.info("event=outboxes_resent partition=%d customers=%d", q, len(writes))
            await self.sink.write(writes)

    async def _on_revoked(self, sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        # held and pending events of revoked partitions are un-acked: their new owner replays them
        revoked = args[0] if args else kwargs.get("revoked", ())
        for tp in revoked:
            if tp.topic == self.routed.get_topic_name():
                self._partitions.pop(tp.partition, None)
                self._first_offset.pop(tp.partition, None)

    async def _on_assigned(self, sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        self.frames.rebalanced()
        self._commit_contiguously()
        self._flush_completely()

    def _flush_completely(self) -> None:
        """Faust flushes its producer buffer (where table writes wait) before it commits
        offsets, but gives up as soon as one message takes 0.1 s to leave it; the offsets
        were then committed ahead of changelog records still in the buffer, and a partition's
        next owner recovered a state without them (an event lost). Flush until it is empty."""
        buffer: Any = self.app.producer.buffer
        if getattr(buffer, "_tierstream_flush", False):
            return

        async def flush() -> None:
            while buffer.size:
                await buffer.flush_atmost(None)  # returns after a 0.1 s pause: go on

        buffer.flush = flush  # this buffer only; Producer.flush calls it
        buffer._tierstream_flush = True

    def _commit_contiguously(self) -> None:
        """Routed offsets are committed only up to the first one not acknowledged
        (``gate.committable``): a waiting close or a held record stays replayable."""
        consumer: Any = self.app.consumer
        if getattr(consumer, "_tierstream_commits", False):
            return
        faust_rule = consumer._new_offset
        routed = self.routed.get_topic_name()

        def new_offset(tp: Any) -> int | None:
            if tp.topic != routed:
                return cast(int | None, faust_rule(tp))
            base = consumer._committed_offset[tp]
            if base is None:
                base = self._first_offset.get(tp.partition)
            acked = consumer._acked[tp]
            end = committable(acked, base)
            if end is not None:
                del acked[: end - base]
                consumer._acked_index[tp].difference_update(range(base, end))
            return end

        # Faust has no setting for it; this consumer only, it is our own topic
        consumer._new_offset = new_offset
        consumer._tierstream_commits = True

    async def _score(self, stream: Any) -> None:
        async for event in stream.noack().events():
            try:
                await self._score_one(stream, event)
            except Exception:  # an infrastructure error that survived the retries: stop loudly
                log.exception("event=scorer_failed topic=%s partition=%d", event.message.topic, event.message.partition)
                raise

    async def _score_one(self, stream: Any, event: Any) -> None:
        m = event.message
        q = m.partition
        self._first_offset.setdefault(q, m.offset)
        part = await self._partition(q)
        header, raw = unframe(m.value)
        kind = header[0]
        if kind == WM:
            part.gate.observe(header[1])
        elif kind == EOD:
            parsed = parse(topics.EOD, raw, self.rules)
            if isinstance(parsed, EndOfDay):
                closed = self.clocks.get(str(q))
                if part.gate.eod(parsed.business_date, header[4], event, closed, self.now()):
                    self.frames.saw_eod(header[4])
                    # it may already be covered; else it waits, un-acked, and the release acks it
                    await self._release(stream, q, part)
                    if any(w.token is event for w in part.gate.waiting):
                        self._keep_unacked(event)
                    return
            else:
                assert isinstance(parsed, Rejected)  # the eod parser returns nothing else
                if q == 0:  # one dead letter for the record, not one per routed copy
                    self.counters.records_in += 1
                    await self._dead(header, raw, parsed)
        elif part.gate.holds(header[4]):
            part.gate.hold(header[4], event)
            self._keep_unacked(event)
            return
        else:
            await self._record(header, raw)
        # Acked only after the release it triggered: Faust waits for un-acked events at a
        # rebalance, so no close or held record is applied after its partition is revoked.
        await self._release(stream, q, part)
        await stream.ack(event)

    def _keep_unacked(self, event: Any) -> None:
        """An event the gate keeps un-acked (Faust then commits no offset past it, so a crash
        replays it) must not also count as one still being processed: Faust waits for those
        at every rebalance, and would wait forever for this one."""
        self.app.consumer._unacked_messages.discard(event.message)  # type: ignore[attr-defined]  # no public way

    async def _release(self, stream: Any, q: int, part: _Partition) -> None:
        """Apply the closes every input partition has caught up with, then the held
        records that no waiting close precedes any more."""
        for step in part.gate.release():
            if isinstance(step, Close):
                await self._close(q, part, step.day)
            else:
                await self._record(*unframe(step.token.message.value))
            await stream.ack(step.token)

    async def _record(self, header: list[Any], raw: bytes | None) -> None:
        _, topic_name, partition, offset, _, key = header
        self.counters.records_in += 1
        source = Source(topic_name, partition, offset, None if key is None else key.encode("latin-1"), raw)
        parsed = parse(self.input_by_name[topic_name], raw, self.rules)
        if isinstance(parsed, Rejected):
            await self._dead(header, raw, parsed)
            return
        assert not isinstance(parsed, EndOfDay)  # customer topics never parse as an eod
        cid = parsed.customer_id
        q = self.routed_partition(cid)
        clock = self._clock(q)
        stored = self.states.get(cid)
        step = apply_event(stored.state if stored else None, parsed, source, clock, self.rules)
        values = self._stamp(step.outputs)
        if step.verdict == ACCEPTED:
            self.counters.accepted += 1
            assert step.state is not None
            if stored is None:
                (await self._partition(q)).members.add(cid)
            self._store(cid, stored, step.state, values)
        elif step.verdict == DUPLICATE:
            self.counters.duplicates += 1
        elif step.verdict == DEAD:
            self.counters.dead(step.outputs[0].value["reason"])
        await self._publish(cid, values)
        if step.evaluated and step.state is not None:
            await self.sink.write([self._customer_write(step.state, clock, values)])

    async def _dead(self, header: list[Any], raw: bytes | None, rejected: Rejected) -> None:
        _, topic_name, partition, offset, _, key = header
        cid = rejected.value.get("customer_id") if type(rejected.value) is dict else None
        stored = self.states.get(cid) if type(cid) is str and cid else None
        self.counters.dead(rejected.reason)
        source = Source(topic_name, partition, offset, None if key is None else key.encode("latin-1"), raw)
        segment = stored.state.segment if stored is not None else None
        await self._send([dead_letter(source, rejected.reason, rejected.error, rejected.value, segment, self.rules)])

    async def _close(self, q: int, part: _Partition, business_date: int) -> None:
        clock = self._clock(q)
        for day in clock.advance(business_date):
            clock = Clock(day)
            self.clocks[str(q)] = day
            self.counters.days_closed += 1
            writes: list[CustomerWrite] = []
            for cid in sorted(part.members):
                stored = self.states.get(cid)
                if stored is None:
                    continue
                step = close_day(stored.state, day, clock, self.rules)
                if not step.evaluated:
                    continue
                values = self._stamp(step.outputs)
                self._store(cid, stored, stored.state, values)
                await self._publish(cid, values)
                writes.append(self._customer_write(stored.state, clock, values))
                if len(writes) >= 500:
                    await self.sink.write(writes)
                    writes = []
            await self.sink.write(writes)
            log.info("event=day_closed partition=%d day=%s customers=%d", q, format_day(day), len(part.members))

    def _clock(self, q: int) -> Clock:
        return Clock(self.clocks.get(str(q)))

    def routed_partition(self, customer_id: str) -> int:
        return partition_of(customer_id, self.settings.partitions)

    # --- outputs ------------------------------------------------------------------

    def _stamp(self, outputs: list[Output]) -> list[dict[str, Any]]:
        stamp = _rfc3339_now(self.now())
        for out in outputs:
            out.value["emitted_at"] = stamp
        return [out.value for out in outputs]

    def _store(self, cid: str, old: Stored | None, state: CustomerState, values: list[dict[str, Any]]) -> None:
        """Write the state with every output it counts as sent and Kafka has not acknowledged."""
        acked = self._acked.pop(cid, set())
        outbox = [(seq, v) for seq, v in (old.outbox if old else []) if seq not in acked]
        outbox += [(v["sequence"], orjson.dumps(v)) for v in values if v["sequence"] is not None]
        self.states[cid] = Stored(state, outbox)  # reassign: reaches the changelog

    async def _publish(self, cid: str, values: list[dict[str, Any]]) -> None:
        """Send a customer's outputs; note each one Kafka acknowledges."""
        for v in values:
            self.counters.outputs[v["type"]] = self.counters.outputs.get(v["type"], 0) + 1
            topic = self._topic[_TOPIC_OF[v["type"]]]
            key = None if v["customer_id"] is None else v["customer_id"].encode()
            # Faust's FutureMessage: an asyncio future resolved when the broker acknowledges
            future = cast(asyncio.Future[Any], await topic.send(key=key, value=orjson.dumps(v)))
            if v["sequence"] is not None:
                future.add_done_callback(partial(self._confirm, cid, v["sequence"]))

    def _confirm(self, cid: str, sequence: int, future: Any) -> None:
        if future.cancelled() or future.exception() is not None:
            # stays in the outbox: sent again when the partition is next recovered
            log.warning("event=output_not_acknowledged customer=%s sequence=%d", cid, sequence)
            return
        self._acked.setdefault(cid, set()).add(sequence)

    async def _send(self, outputs: list[Output]) -> None:
        """Outputs no state records (dead letters): a replay makes them again."""
        values = self._stamp(outputs)
        for v in values:
            await self._publish(v["customer_id"] or "", [v])

    def _customer_write(self, st: CustomerState, clock: Clock, values: list[dict[str, Any]]) -> CustomerWrite:
        fields = customer_view(st, clock, self.rules)
        fields["updated_at"] = _rfc3339_now(self.now())
        entries = [
            Entry(STREAM_OF[v["type"]], v["sequence"], v["event_id"], orjson.dumps(v), v["type"] == "tier_change")
            for v in values
            if v["type"] in STREAM_OF
        ]
        return CustomerWrite(st.customer_id, st.sequence, fields["as_of"], fields, entries)

    # --- web ----------------------------------------------------------------------

    async def _health(self, web: Any) -> Any:
        return web.json({"status": "ok", "app_id": self.settings.app_id, "rules_version": self.rules.version})

    async def _counters_page(self, web: Any) -> Any:
        lag: dict[str, int] = {}
        for tp in self.app.consumer.assignment():
            source = f"{tp.topic}:{tp.partition}"
            try:
                high = self.app.consumer.highwater(tp)
            except Exception:
                continue
            if high is not None and tp.topic in self.input_by_name:
                lag[source] = max(0, high - self._next_offset.get(source, high))
        body = self.counters.as_dict()
        body["consumer_lag"] = lag
        body["held"] = sum(len(p.gate.held) for p in self._partitions.values())
        routed = self.routed.get_topic_name()
        body["routed_partitions"] = sorted(tp.partition for tp in self.app.consumer.assignment() if tp.topic == routed)
        body["pending_closes"] = sum(len(p.gate.waiting) for p in self._partitions.values())
        body["closes_waiting"] = self._closes_waiting(self.now())
        return web.json(body)

    def _closes_waiting(self, now: float) -> list[dict[str, Any]]:
        """Every waiting close: its day, how long it has waited, and the input partition
        whose watermark holds it back (with that watermark, -1 if it never reported)."""
        out = []
        for q, part in sorted(self._partitions.items()):
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

    def _warn_slow_closes(self, now: float) -> None:
        """A close that waits longer than the configured bound is logged, naming the input
        partition that holds it back, once per bound while it waits."""
        bound = self.settings.close_wait_warning
        for q, part in self._partitions.items():
            waiting = part.gate.waiting
            if waiting and now - waiting[0].since > bound and now - part.warned_at > bound:
                part.warned_at = now
                source, mark = _holdup(part.gate)
                log.warning(
                    "event=close_waiting partition=%d day=%s waiting_seconds=%.0f held_back_by=%s watermark_ms=%d "
                    "eod_timestamp_ms=%d",
                    q,
                    format_day(waiting[0].day),
                    now - waiting[0].since,
                    source,
                    mark,
                    waiting[0].ts,
                )


def _holdup(gate: CloseGate[Any]) -> tuple[str | None, int]:
    """The input partition holding a gate's oldest close back and its watermark (-1: none yet)."""
    source = gate.holding_back()
    return source, gate.watermarks.get(source or "", -1)


def _rfc3339_now(now: float) -> str:
    seconds = int(now)
    micros = int((now - seconds) * 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"
