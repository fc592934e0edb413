"""What a worker tells its operators: Prometheus metrics (``/metrics``) and readiness
(``/ready``), both read from the runtime when asked, so the record path pays nothing for
them (but the Redis write timer, one observation per checkpoint).

Counters restart from 0 with the process, as Prometheus counters do (``rate()`` and
``increase()`` handle the reset); they count what this process did, so a record replayed
after a rebalance counts again on its new owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.sinks import UNAVAILABLE, CustomerWrite, TierSink

if TYPE_CHECKING:
    from streams.runtime import Runtime

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: Prometheus handles resets
_EPOCH = date(1970, 1, 1).toordinal()
READY_STALL_SECONDS = 120.0  # records waiting and nothing taken in for this long: not ready
REDIS_TIMEOUT = 2.0  # seconds a scrape or a readiness check waits for Redis


class TimedSink:
    """The Redis sink, each write's duration observed (retries while Redis is away included:
    that wait is what the operator needs to see)."""

    def __init__(self, sink: TierSink, histogram: Histogram) -> None:
        self.sink = sink
        self.histogram = histogram

    async def write(self, writes: Sequence[CustomerWrite]) -> None:
        if not writes:  # a checkpoint of acknowledgements only: no Redis round trip to time
            return
        started = time.perf_counter()
        try:
            await self.sink.write(writes)
        finally:
            self.histogram.observe(time.perf_counter() - started)

    async def tier_sizes(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        return await self.sink.tier_sizes(pairs)

    async def ping(self, timeout: float) -> bool:
        return await self.sink.ping(timeout)

    async def close(self) -> None:
        await self.sink.close()


def redis_write_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "tierstream_redis_write_seconds",
        "Time to apply one checkpoint's writes to Redis (a pipeline of scripts), waits for Redis included.",
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
        registry=registry,
    )


class RuntimeCollector(Collector):
    """The runtime's counters and gauges, read at each scrape."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.tier_sizes: dict[tuple[str, str], int] = {}  # refreshed by ``metrics`` before each scrape

    def collect(self) -> Iterator[Metric]:
        rt, scorer = self.runtime, self.runtime.scorer
        counters = scorer.core.counters
        inputs = CounterMetricFamily(
            "tierstream_input_records", "Input records taken in, by topic and verdict.", labels=["topic", "verdict"]
        )
        for topic, verdicts in sorted(counters.inputs.items()):
            for verdict, n in sorted(verdicts.items()):
                inputs.add_metric([topic, verdict], n)
        yield inputs
        yield _by("tierstream_dead_letters", "Dead letters made, by reason.", "reason", counters.dead_letters)
        yield _by("tierstream_outputs", "Output records made, by type.", "type", counters.outputs)
        yield CounterMetricFamily("tierstream_day_closes", "Days closed, per routed partition.", counters.days_closed)
        yield CounterMetricFamily(
            "tierstream_close_seconds", "Time spent closing days (all partitions).", scorer.close_seconds
        )
        yield CounterMetricFamily(
            "tierstream_records_after_their_close",
            "Records stamped before an eod whose close was already applied (should stay 0).",
            scorer.after_their_close,
        )
        lag = GaugeMetricFamily(
            "tierstream_consumer_lag_records",
            "Input records not routed yet, per input partition this worker reads (absent until first fetched).",
            labels=["topic", "partition"],
        )
        for source, n in sorted(rt.lag().items()):
            name, _, p = source.rpartition(":")
            lag.add_metric([rt.inputs[name].name, p], n)
        yield lag
        closed = GaugeMetricFamily(
            "tierstream_closed_day_timestamp_seconds",
            "The latest business day closed, per routed partition this worker owns (its midnight, UTC).",
            labels=["partition"],
        )
        for q, day in sorted(rt.clocks.items()):
            if q in rt.owned():
                closed.add_metric([str(q)], (day - _EPOCH) * 86_400)
        yield closed
        age = GaugeMetricFamily(
            "tierstream_watermark_age_seconds",
            "Now minus the lowest input watermark a routed partition has heard of: how far its closes lag.",
            labels=["partition"],
        )
        now = rt.now()
        for q, mark in sorted(scorer.lowest_watermarks().items()):
            age.add_metric([str(q)], max(0.0, now - mark / 1000))
        yield age
        yield GaugeMetricFamily("tierstream_held_records", "Records held until a waiting close.", scorer.held())
        yield GaugeMetricFamily("tierstream_held_records_peak", "The most records held at once.", rt.held_peak)
        yield GaugeMetricFamily(
            "tierstream_waiting_closes",
            "Day closes waiting for the input watermarks.",
            scorer.pending_closes(),
        )
        yield GaugeMetricFamily("tierstream_routed_partitions", "Routed partitions this worker owns.", len(rt.owned()))
        tiers = GaugeMetricFamily(
            "tierstream_customers",
            "Customers per segment and tier, from Redis (the whole deployment: every worker reports the same).",
            labels=["segment", "tier"],
        )
        for (segment, tier), n in sorted(self.tier_sizes.items()):
            tiers.add_metric([segment, tier], n)
        yield tiers


def _by(name: str, doc: str, label: str, values: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, n in sorted(values.items()):
        family.add_metric([key], n)
    return family


@dataclass
class Monitoring:
    """One worker's registry: its collector and the Redis write timer."""

    registry: CollectorRegistry
    collector: RuntimeCollector

    @classmethod
    def of(cls, runtime: Runtime, registry: CollectorRegistry) -> Monitoring:
        collector = RuntimeCollector(runtime)
        registry.register(collector)
        return cls(registry, collector)

    async def metrics(self, runtime: Runtime) -> bytes:
        """The Prometheus text exposition; customers per tier asked of Redis first (one
        SCARD per tier, pipelined), the last answer kept if Redis does not give one."""
        pairs = [(s.name, t.name) for s in runtime.rules.segments.values() for t in s.tiers]
        with contextlib.suppress(TimeoutError, *UNAVAILABLE):  # Redis away: the other figures matter most then
            sizes = await asyncio.wait_for(runtime.sink.tier_sizes(pairs), REDIS_TIMEOUT)
            self.collector.tier_sizes = dict(zip(pairs, sizes, strict=True))
        return generate_latest(self.registry)


async def readiness(runtime: Runtime) -> tuple[bool, dict[str, Any]]:
    """Whether the worker does its share: in the group with its partitions assigned, its
    tables recovered, Redis answering, and taking records in while any wait for it."""
    now = time.monotonic()
    waiting = any(runtime.lag().values()) or runtime.scorer.held() > 0
    stalled_for = now - runtime.progressed_at
    checks = {
        "assigned": runtime.in_group,
        "recovered": not runtime.recovering,
        "redis": await runtime.sink.ping(REDIS_TIMEOUT),
        "progressing": not waiting or stalled_for < READY_STALL_SECONDS,
    }
    body: dict[str, Any] = {"ready": all(checks.values()), "checks": checks}
    if waiting:
        body["seconds_since_progress"] = round(stalled_for, 1)
    return all(checks.values()), body
