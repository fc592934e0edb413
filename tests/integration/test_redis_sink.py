"""The TierSink contract against a real Redis server."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from devkit import devstack
from streams.sinks import RedisTierSink
from tests.sink_contract import SinkContract, change, write

pytestmark = pytest.mark.integration


class RedisProbe:
    def __init__(self, url: str, prefix: str, runner: asyncio.Runner) -> None:
        self.sink = RedisTierSink(url, prefix)
        self.runner = runner
        self.prefix = prefix
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.pubsub = redis.Redis.from_url(url).pubsub()
        self.pubsub.subscribe(f"{prefix}changes")
        self.pubsub.get_message(timeout=1)  # the subscription's confirmation

    def hash(self, cid: str) -> dict[str, str]:
        return dict(self.client.hgetall(f"{self.prefix}customer:{cid}"))

    def members(self, segment: str, tier: str) -> set[str]:
        return set(self.client.smembers(f"{self.prefix}members:{segment}:{tier}"))

    def stream(self, name: str) -> list[str]:
        return [fields["event_id"] for _, fields in self.client.xrange(f"{self.prefix}{name}")]

    def published(self) -> list[bytes]:
        messages = []
        while (m := self.pubsub.get_message(timeout=0.3)) is not None:
            messages.append(m["data"])
        return messages


@pytest.fixture
def probe(redis_url: str, names: dict[str, str]) -> Iterator[RedisProbe]:
    with asyncio.Runner() as runner:  # the async client belongs to one event loop
        p = RedisProbe(redis_url, names["redis"], runner)
        yield p
        runner.run(p.sink.close())
        p.pubsub.close()


class TestRedisTierSink(SinkContract):
    pass


@pytest.mark.parametrize("fault", ["frozen", "restarted"])
def test_a_write_waits_for_redis_and_lands_once_it_is_back(tmp_path: Path, fault: str) -> None:
    """Back-pressure: while its own server is frozen (commands time out) or down (connections
    refused; it comes back without the script, as a restart leaves it), a write waits and
    tries again rather than failing; it lands once the server answers."""
    server = devstack.start_valkey(tmp_path)
    url = f"redis://127.0.0.1:{server.port}/0"
    client = redis.Redis.from_url(url, decode_responses=True)
    sink = RedisTierSink(url, "t:", command_timeout=0.5)

    async def run() -> None:
        nonlocal server
        await sink.write([write(1, "2026-11-02", "gold", [change(1)])])  # the script is loaded
        if fault == "frozen":
            os.kill(server.pid, signal.SIGSTOP)
        else:
            server.stop()
        pending = asyncio.create_task(sink.write([write(2, "2026-11-03", "platinum", [change(2)])]))
        await asyncio.sleep(2.0)
        assert not pending.done() and sink.unavailable_since is not None
        if fault == "frozen":
            os.kill(server.pid, signal.SIGCONT)
        else:
            server = devstack.start_valkey(tmp_path, server.port)
        await asyncio.wait_for(pending, 15)
        assert sink.unavailable_since is None

    try:
        asyncio.run(run())
        assert client.hget("t:customer:c1", "tier") == "platinum"
        stream = [f["event_id"] for _, f in client.xrange("t:changes")]
        assert stream == (["c1:1", "c1:2"] if fault == "frozen" else ["c1:2"])  # a restart kept no data
    finally:
        server.stop()
