"""When a day close may go, and when a worker must tell the others how far it has read.

Pure bookkeeping for the shell (no Faust, no clock of its own: times are passed in), so the
rule that keeps closes from overtaking their day's data is tested without a broker.

``CloseGate`` is what the scorer keeps per routed partition: routed records in, actions
out (apply a close, apply a record, acknowledge, keep un-acknowledged), which the scorer
carries out in order. A close of D waits until every input partition of the application
has been read past the Kafka timestamp of the first copy of D's ``eod`` this routed
partition read (its *watermark* has passed it); records stamped at or after a waiting
close are held until the close is applied. Copies of a day that already waits or is
closed do nothing, so they do not gate.

``FramePolicy`` decides when a worker sends its watermarks (one *frame* to every routed
partition). Frames are records in the routed topic, behind the records they cover, so they
must be few: a frame is sent only when some close may be waiting for it — after an ``eod``
newer than what this worker last reported, right after a rebalance (a routed partition's
new owner starts without watermarks), or, for a worker that sees no ``eod`` at all, as a
slow heartbeat. An idle pipeline sends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")  # what the caller acknowledges once a record or close is applied


@dataclass
class Waiting(Generic[T]):
    """A close that waits for the input partitions' watermarks."""

    day: int
    ts: int  # Kafka timestamp of the eod copy that opened it, ms
    since: float  # when it started waiting, seconds (caller's clock)
    token: T
    copies: dict[int, int] = field(default_factory=dict)  # eod partition -> its copy's timestamp, as seen


@dataclass(frozen=True)
class Close:
    """Apply the close of ``day`` now (its eod's token is acknowledged right after)."""

    day: int


@dataclass(frozen=True)
class Apply(Generic[T]):
    """Apply the record of ``token`` now."""

    token: T


@dataclass(frozen=True)
class Ack(Generic[T]):
    """Acknowledge ``token``: what it carried has been applied."""

    token: T


@dataclass(frozen=True)
class Keep(Generic[T]):
    """Leave ``token`` un-acknowledged (a waiting close or a held record): a crash replays it."""

    token: T


Action = Close | Apply[T] | Ack[T] | Keep[T]


@dataclass
class CloseGate(Generic[T]):
    """The waiting closes and held records of one routed partition."""

    sources: frozenset[str]  # every input partition of the application, "topic:partition"
    watermarks: dict[str, int] = field(default_factory=dict)
    waiting: list[Waiting[T]] = field(default_factory=list)  # by ts
    held: list[tuple[int, T]] = field(default_factory=list)  # (ts, token), in arrival order
    closed_ts: int = -1  # the timestamp of the latest eod whose close was applied here, ms

    def low_watermark(self) -> int:
        """The time every input partition has been read past; -1 until all reported."""
        if not self.sources <= self.watermarks.keys():
            return -1
        return min(self.watermarks[s] for s in self.sources)

    def on_watermarks(self, marks: Mapping[str, int], token: T) -> list[Action[T]]:
        """A worker's frame: watermarks never go back; closes they allow go now."""
        for source, mark in marks.items():
            if mark > self.watermarks.get(source, -1):
                self.watermarks[source] = mark
        return [*self._release(), Ack(token)]

    def on_eod(self, day: int, ts: int, token: T, closed: int | None, now: float, copy: int = 0) -> list[Action[T]]:
        """An eod copy for ``day`` stamped ``ts``, read from eod partition ``copy``. The first
        copy of a day not closed opens its close, which waits for the watermarks (its token
        stays un-acked until it is applied); copies of a day closed or already waiting change
        nothing, but are noted (``Waiting.copies``: the runtime's back-pressure)."""
        for w in self.waiting:
            if w.day == day:
                w.copies[copy] = ts
        if (closed is not None and day <= closed) or any(w.day == day for w in self.waiting):
            return [*self._release(), Ack(token)]
        self.waiting.append(Waiting(day, ts, now, token, {copy: ts}))
        self.waiting.sort(key=lambda w: w.ts)
        actions = self._release()
        if any(w.token is token for w in self.waiting):
            actions.append(Keep(token))
        return actions

    def on_record(self, ts: int, token: T) -> list[Action[T]]:
        """A customer record stamped ``ts``: held while a waiting close precedes it."""
        if self.waiting and ts >= self.waiting[0].ts:
            self.held.append((ts, token))
            return [Keep(token)]
        return [Apply(token), Ack(token)]

    def on_other(self, token: T) -> list[Action[T]]:
        """A record that neither gates nor is gated (an eod that is no valid eod)."""
        return [*self._release(), Ack(token)]

    def _release(self) -> list[Action[T]]:
        """The closes the watermarks allow, each followed by the held records no waiting
        close precedes any more, in the order they must be applied."""
        actions: list[Action[T]] = []
        low = self.low_watermark()
        while self.waiting and low >= self.waiting[0].ts:
            opened = self.waiting.pop(0)
            self.closed_ts = max(self.closed_ts, opened.ts)
            actions += [Close(opened.day), Ack(opened.token)]
            limit = self.waiting[0].ts if self.waiting else None
            still = []
            for ts, token in self.held:
                if limit is None or ts < limit:
                    actions += [Apply(token), Ack(token)]
                else:
                    still.append((ts, token))
            self.held = still
        return actions

    def holding_back(self) -> str | None:
        """The input partition the oldest waiting close waits for (the lowest watermark,
        or one that has not reported), None when nothing waits."""
        if not self.waiting:
            return None
        missing = sorted(self.sources - self.watermarks.keys())
        if missing:
            return missing[0]
        return min(sorted(self.sources), key=lambda s: self.watermarks[s])


@dataclass
class FramePolicy:
    """When this worker sends its watermarks to every routed partition."""

    interval: float  # seconds between frames while a close may wait for them
    heartbeat: float  # seconds between frames of a worker that sees no eod
    newest_eod: int = -1  # the latest eod timestamp this worker has seen, ms
    sent: dict[str, int] = field(default_factory=dict)
    sent_at: float = float("-inf")
    resend: bool = False

    def saw_eod(self, ts: int) -> None:
        self.newest_eod = max(self.newest_eod, ts)

    def rebalanced(self) -> None:
        """Routed partitions may have new owners, whose gates start without watermarks."""
        self.resend = True

    def due(self, marks: Mapping[str, int], now: float, sees_eods: bool) -> bool:
        """Whether to send ``marks`` now; if so, they count as sent."""
        if not marks:
            return False
        if not self.resend:
            if dict(marks) == self.sent or now - self.sent_at < self.interval:
                return False
            behind = min(self.sent.get(s, -1) for s in marks) < self.newest_eod
            if not behind and (sees_eods or now - self.sent_at < self.heartbeat):
                return False
        self.sent, self.sent_at, self.resend = dict(marks), now, False
        return True


def pause_limit(copies: Mapping[int, Mapping[int, int]], eod_partitions: int) -> int | None:
    """Where input partitions may pause, given the eod copies known per waiting or just
    routed day (day -> eod partition -> the copy's timestamp, ms): the latest copy of the
    earliest day, once every eod partition's copy of it is known. Each routed partition's
    close waits for the first copy it read, whichever worker's it is; a partition read past
    the latest copy holds none of them back, so pausing it cannot stall a close anywhere.
    None while a copy of that day is unknown (some eod partition not read yet)."""
    if not copies:
        return None
    known = copies[min(copies)]
    return max(known.values()) if len(known) >= eod_partitions else None


@dataclass
class Ahead:
    """The records this worker routed stamped at or after the pause limit (``pause_limit``):
    the gates will hold them until the earliest waiting close is applied. Back-pressure
    engages once they exceed ``bound``: below it, a backlog's next day is routed while the
    current one closes (taking it a day at a time cost a 10-day stream a quarter of its
    rate); above it, memory is what bounds. Counted from when the limit is known: records
    routed while it was not (an eod partition's copy still unread) are not counted."""

    bound: int
    limit: int | None = None
    stamps: list[int] = field(default_factory=list)  # of the records routed at or after the limit

    def moved(self, limit: int | None) -> None:
        """The pause limit now: a later one (a close applied) keeps only the records still ahead."""
        if limit is not None and limit != self.limit:
            self.stamps = [ts for ts in self.stamps if ts >= limit]
        self.limit = limit

    def routed(self, ts: int) -> bool:
        """A record stamped ``ts`` was routed; True: the bound is passed, its partition stops here."""
        if self.limit is None or ts < self.limit:
            return False
        self.stamps.append(ts)
        return len(self.stamps) > self.bound

    def full(self) -> bool:
        """Partitions read up to the limit must pause."""
        return self.limit is not None and len(self.stamps) >= self.bound


def gap_at(expected: int | None, offsets: list[int]) -> int | None:
    """Where a fetch of a routed partition skips an offset: the index of the first offset
    past ``expected`` (the one after the last read), or None if they follow on. The routed
    topic is ours — no transactions, no compaction — so an offset is skipped only when the
    broker made a later batch visible before an earlier one: Tansu does, when two workers
    write one partition at once, and aiokafka then moves on past the earlier batch
    (measured: 1 to 8 of 12,000 records read live were skipped; all there when read again)."""
    for i, offset in enumerate(offsets):
        if expected is not None and offset > expected:
            return i
        expected = offset + 1
    return None


def committable(acked: list[int], base: int | None) -> int | None:
    """The routed offset a worker may commit: the end of the run of acknowledged offsets
    that starts exactly at ``base`` (the committed offset, or the first offset read since
    the partition was assigned), None while ``base`` itself is not acknowledged.

    Faust's own rule lets one un-acked offset slip (it tolerates a gap of one after the
    committed offset, for transaction markers), and none at all before a first commit: an
    eod waiting at that offset, or a record held behind it, would then be committed past
    and lost in a crash. The routed topic is ours and has no markers, so no gap is allowed.
    """
    acked.sort()
    if base is None or not acked or acked[0] != base:
        return None
    end = base
    for offset in acked:
        if offset != end:
            break
        end += 1
    return end
