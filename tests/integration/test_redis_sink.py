"""The TierSink contract against a real Redis server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis

from streams.sinks import RedisTierSink
from tests.sink_contract import SinkContract

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
