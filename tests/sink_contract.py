"""One behaviour, every adapter: the TierSink contract. ``tests/unit`` runs it against the
in-memory sink, ``tests/integration`` against a real Redis; each subclass provides a probe."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from streams.sinks import HASH_FIELDS, CustomerWrite, Entry


class Probe(Protocol):
    """Reads what a sink stored, whatever the adapter."""

    sink: Any
    runner: asyncio.Runner

    def hash(self, cid: str) -> dict[str, str]: ...
    def members(self, segment: str, tier: str) -> set[str]: ...
    def stream(self, name: str) -> list[str]: ...
    def published(self) -> list[bytes]: ...  # what the "changes" channel carried, in order


def write(seq: int, as_of: str, tier: str, entries: list[Entry] | None = None) -> CustomerWrite:
    fields = {name: f"{name}-{seq}" for name in HASH_FIELDS}  # every field, as a view has
    fields |= {"tier": tier, "segment": "retail", "sequence": str(seq), "as_of": as_of, "updated_at": "t"}
    return CustomerWrite("c1", seq, as_of, fields, entries or [])


def change(seq: int) -> Entry:
    return Entry("changes", seq, f"c1:{seq}", b'{"x":1}', "changes")


def apply(probe: Probe, *writes: CustomerWrite) -> None:
    probe.runner.run(probe.sink.write(list(writes)))


class SinkContract:
    """The tests every TierSink passes; the ``probe`` fixture comes from the subclass's module."""

    def test_a_write_sets_the_hash_members_and_streams(self, probe: Probe) -> None:
        apply(probe, write(1, "2026-11-02", "gold", [change(1)]))
        assert probe.hash("c1")["tier"] == "gold"
        assert probe.members("retail", "gold") == {"c1"}
        assert probe.stream("changes") == ["c1:1"]

    def test_a_replay_changes_nothing(self, probe: Probe) -> None:
        w = write(2, "2026-11-02", "gold", [Entry("rm-alerts", 1, "c1:1", b"{}"), change(2)])
        apply(probe, w)
        apply(probe, w)
        assert probe.stream("changes") == ["c1:2"] and probe.stream("rm-alerts") == ["c1:1"]

    def test_redis_never_goes_back(self, probe: Probe) -> None:
        apply(probe, write(5, "2026-11-05", "platinum", [change(5)]))
        apply(probe, write(4, "2026-11-09", "gold", [change(4)]))  # older sequence
        apply(probe, write(5, "2026-11-04", "gold"))  # same sequence, older as-of day
        stored = probe.hash("c1")
        assert (stored["tier"], stored["sequence"], stored["as_of"]) == ("platinum", "5", "2026-11-05")
        assert probe.stream("changes") == ["c1:5"]
        assert probe.members("retail", "gold") == set()

    def test_a_day_close_refresh_moves_as_of_without_stream_entries(self, probe: Probe) -> None:
        apply(probe, write(3, "2026-11-05", "gold", [change(3)]))
        apply(probe, write(3, "2026-11-06", "gold"))
        assert probe.hash("c1")["as_of"] == "2026-11-06"
        assert probe.stream("changes") == ["c1:3"]

    def test_a_tier_change_moves_the_member(self, probe: Probe) -> None:
        apply(probe, write(1, "2026-11-02", "gold", [change(1)]))
        apply(probe, write(2, "2026-11-03", "platinum", [change(2)]))
        assert probe.members("retail", "gold") == set()
        assert probe.members("retail", "platinum") == {"c1"}

    def test_tier_changes_are_published_once_on_their_channel(self, probe: Probe) -> None:
        apply(probe, write(1, "2026-11-02", "gold", [change(1)]))
        apply(probe, write(1, "2026-11-02", "gold", [change(1)]))
        assert probe.published() == [b'{"x":1}']
