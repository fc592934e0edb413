"""One behaviour, two adapters: RedisTierSink (real server) and MemoryTierSink."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from streams.sinks import CustomerWrite, Entry, MemoryTierSink, RedisTierSink


class Probe:
    """Reads what a sink stored, whatever the adapter."""

    def __init__(self, sink: Any, url: str | None, prefix: str, runner: asyncio.Runner) -> None:
        self.sink, self.prefix, self.runner = sink, prefix, runner
        self.client = redis.Redis.from_url(url, decode_responses=True) if url else None

    def hash(self, cid: str) -> dict[str, str]:
        if self.client:
            return dict(self.client.hgetall(f"{self.prefix}customer:{cid}"))
        return dict(self.sink.hashes.get(cid, {}))

    def members(self, segment: str, tier: str) -> set[str]:
        if self.client:
            return set(self.client.smembers(f"{self.prefix}members:{segment}:{tier}"))
        return set(self.sink.members.get((segment, tier), set()))

    def stream(self, name: str) -> list[str]:
        if self.client:
            return [fields["event_id"] for _, fields in self.client.xrange(f"{self.prefix}{name}")]
        return [eid for eid, _ in self.sink.streams.get(name, [])]


@pytest.fixture(params=["redis", "memory"])
def probe(request: pytest.FixtureRequest, redis_url: str, names: dict[str, str]) -> Iterator[Probe]:
    with asyncio.Runner() as runner:  # the async client belongs to one event loop
        if request.param == "memory":
            yield Probe(MemoryTierSink(), None, names["redis"], runner)
            return
        sink = RedisTierSink(redis_url, names["redis"])
        yield Probe(sink, redis_url, names["redis"], runner)
        runner.run(sink.close())


def write(seq: int, as_of: str, tier: str, entries: list[Entry] | None = None) -> CustomerWrite:
    fields = {"tier": tier, "segment": "retail", "sequence": str(seq), "as_of": as_of, "updated_at": "t"}
    return CustomerWrite("c1", seq, as_of, fields, entries or [])


def change(seq: int) -> Entry:
    return Entry("changes", seq, f"c1:{seq}", b'{"x":1}', True)


def apply(probe: Probe, *writes: CustomerWrite) -> None:
    probe.runner.run(probe.sink.write(list(writes)))


def test_a_write_sets_the_hash_members_and_streams(probe: Probe) -> None:
    apply(probe, write(1, "2026-11-02", "gold", [change(1)]))
    assert probe.hash("c1")["tier"] == "gold"
    assert probe.members("retail", "gold") == {"c1"}
    assert probe.stream("changes") == ["c1:1"]


def test_a_replay_changes_nothing(probe: Probe) -> None:
    w = write(2, "2026-11-02", "gold", [Entry("rm-alerts", 1, "c1:1", b"{}", False), change(2)])
    apply(probe, w)
    apply(probe, w)
    assert probe.stream("changes") == ["c1:2"] and probe.stream("rm-alerts") == ["c1:1"]


def test_redis_never_goes_back(probe: Probe) -> None:
    apply(probe, write(5, "2026-11-05", "platinum", [change(5)]))
    apply(probe, write(4, "2026-11-09", "gold", [change(4)]))  # older sequence
    apply(probe, write(5, "2026-11-04", "gold"))  # same sequence, older as-of day
    stored = probe.hash("c1")
    assert (stored["tier"], stored["sequence"], stored["as_of"]) == ("platinum", "5", "2026-11-05")
    assert probe.stream("changes") == ["c1:5"]
    assert probe.members("retail", "gold") == set()


def test_a_day_close_refresh_moves_as_of_without_stream_entries(probe: Probe) -> None:
    apply(probe, write(3, "2026-11-05", "gold", [change(3)]))
    apply(probe, write(3, "2026-11-06", "gold"))
    assert probe.hash("c1")["as_of"] == "2026-11-06"
    assert probe.stream("changes") == ["c1:3"]


def test_a_tier_change_moves_the_member(probe: Probe) -> None:
    apply(probe, write(1, "2026-11-02", "gold", [change(1)]))
    apply(probe, write(2, "2026-11-03", "platinum", [change(2)]))
    assert probe.members("retail", "gold") == set()
    assert probe.members("retail", "platinum") == {"c1"}
