"""Where tierstream changes faust-streaming's behaviour, all in one place.

Written for faust-streaming 0.15 (pinned to that minor version in pyproject.toml): each
patch replaces a private method, so a new minor version must be read against these before
the pin moves. ``check_version`` refuses any other. Process-wide patches are installed
once where the worker is built (``install``); the others are per consumer or producer
(``commit_contiguously``, ``flush_completely``) or per event (``keep_unacked``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from kafka import KafkaConsumer, TopicPartition

from streams.gate import committable

WRITTEN_FOR = "0.15"
FETCH_WAIT_MS = 10  # Faust hard-codes 1500 ms; Tansu then holds every fetch that long (README, "Development profile")


def check_version(version: str = faust.__version__) -> None:
    if version.split(".")[:2] != WRITTEN_FOR.split("."):
        raise RuntimeError(f"tierstream's Faust patches were written for faust-streaming {WRITTEN_FOR}, not {version}")


def install(tansu_bootstrap: str | None) -> None:
    """The process-wide patches: fast fetches always, exact end offsets on Tansu."""
    check_version()
    _fast_fetch()
    if tansu_bootstrap is not None:
        _exact_end_offsets(tansu_bootstrap)


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
    records, and Faust then ends table recovery early (README, "Development profile").
    Read past the reported end of each changelog partition and count what is really there."""
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


def keep_unacked(consumer: Any, event: Any) -> None:
    """An event deliberately left un-acked (Faust then commits no offset past it, so a crash
    replays it) must not also count as one still being processed: Faust waits for those at
    every rebalance, and would wait forever for this one."""
    consumer._unacked_messages.discard(event.message)  # no public way


def commit_contiguously(consumer: Any, topic: str, first_offsets: Mapping[int, int]) -> None:
    """Offsets of ``topic`` are committed only up to the first one not acknowledged
    (``gate.committable``): a waiting close or a held record stays replayable.
    ``first_offsets``: per partition, the first offset read since it was assigned."""
    if getattr(consumer, "_tierstream_commits", False):
        return
    faust_rule = consumer._new_offset

    def new_offset(tp: Any) -> int | None:
        if tp.topic != topic:
            return cast(int | None, faust_rule(tp))
        base = consumer._committed_offset[tp]
        if base is None:
            base = first_offsets.get(tp.partition)
        acked = consumer._acked[tp]
        end = committable(acked, base)
        if end is not None:
            del acked[: end - base]
            consumer._acked_index[tp].difference_update(range(base, end))
        return end

    # Faust has no setting for it; this consumer only, it is our own topic
    consumer._new_offset = new_offset
    consumer._tierstream_commits = True


def flush_completely(producer: Any) -> None:
    """Faust flushes its producer buffer (where table writes wait) before it commits
    offsets, but gives up as soon as one message takes 0.1 s to leave it; the offsets were
    then committed ahead of changelog records still in the buffer, and a partition's next
    owner recovered a state without them (an event lost). Flush until it is empty."""
    buffer: Any = producer.buffer
    if getattr(buffer, "_tierstream_flush", False):
        return

    async def flush() -> None:
        while buffer.size:
            await buffer.flush_atmost(None)  # returns after a 0.1 s pause: go on

    buffer.flush = flush  # this buffer only; Producer.flush calls it
    buffer._tierstream_flush = True
