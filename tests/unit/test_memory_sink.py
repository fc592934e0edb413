"""The TierSink contract against the in-memory sink (no server)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from streams.sinks import MemoryTierSink
from tests.sink_contract import SinkContract


class MemoryProbe:
    def __init__(self, runner: asyncio.Runner) -> None:
        self.sink = MemoryTierSink()
        self.runner = runner

    def hash(self, cid: str) -> dict[str, str]:
        return dict(self.sink.hashes.get(cid, {}))

    def members(self, segment: str, tier: str) -> set[str]:
        return set(self.sink.members.get((segment, tier), set()))

    def stream(self, name: str) -> list[str]:
        return [eid for eid, _ in self.sink.streams.get(name, [])]

    def published(self) -> list[bytes]:
        return [message for channel, message in self.sink.published if channel == "changes"]


@pytest.fixture
def probe() -> Iterator[MemoryProbe]:
    with asyncio.Runner() as runner:
        yield MemoryProbe(runner)


class TestMemoryTierSink(SinkContract):
    pass
