"""Where outputs go besides Kafka: the customer's Redis hash, tier member sets, streams and
pub/sub (which outputs go to which stream and channel is the topic registry's to say).

``TierSink`` is the port; ``RedisTierSink`` the real adapter, ``MemoryTierSink`` an
in-memory one with the same behaviour for agent tests. Every write carries the customer's
(sequence, as_of) and is applied only if that pair is not older than the stored one, so a
replay changes nothing and Redis never goes back; stream entries and messages are
appended only for sequences newer than the stored one.

When Redis cannot be reached (or refuses writes: loading, read-only, out of memory), a
write waits and tries again until it is applied: back-pressure. The scorer's checkpoint
waits with it, so nothing is acknowledged or committed meanwhile and the worker stops
taking records in; nothing piles up in memory, and Redis receives every write in order once
it is back. A replay would do the same work again, so there is nothing to gain by crashing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, OutOfMemoryError, ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streams.logs import event

log = logging.getLogger("tierstream")

STREAM_MAXLEN = 100_000
# the server's answers that mean "not now": unreachable, loading its data (a ConnectionError),
# a replica, full; and a script it lost in a restart between the pipeline's check and its call
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OutOfMemoryError, NoScriptError)
COMMAND_TIMEOUT = 10.0  # seconds: a server that does not answer a pipeline in this long is down
RETRY_FIRST, RETRY_CAP = 0.1, 5.0  # seconds between tries: doubling from the first to the cap
WARN_EVERY = 30.0  # seconds between the warnings that writes still wait


@dataclass
class Entry:
    """One output bound for a Redis stream (and maybe a pub/sub channel), names before the prefix."""

    stream: str
    sequence: int
    event_id: str
    json: bytes
    channel: str | None = None


@dataclass
class CustomerWrite:
    """Everything one evaluation of one customer writes to Redis, applied atomically."""

    customer_id: str
    sequence: int
    as_of: str
    fields: dict[str, str]  # the hash: tier, segment, since, sequence, ..., updated_at
    entries: list[Entry] = field(default_factory=list)


class TierSink(Protocol):
    async def write(self, writes: Sequence[CustomerWrite]) -> None:
        """Apply each write atomically; raise only for infrastructure errors."""

    async def tier_sizes(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        """How many customers each (segment, tier) has now."""

    async def ping(self, timeout: float) -> bool:
        """Whether the store answers within ``timeout`` seconds."""

    async def close(self) -> None: ...


# The customer hash's fields, in the order the script receives their values.
HASH_FIELDS = (
    "tier",
    "segment",
    "since",
    "sequence",
    "rules_version",
    "metric",
    "metric_value",
    "as_of",
    "metrics",
    "updated_at",
)

# KEYS[1] = the customer hash. ARGV: cid, sequence, as_of, prefix, maxlen, n_entries, then 5
# per entry (stream, sequence, event_id, json, channel or ''), then the values of HASH_FIELDS
# (names are the script's: fewer arguments to pack per customer, and a close writes every one).
_APPLY = f"""
local h = KEYS[1]
local cid, seq, asof, prefix, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local n = tonumber(ARGV[6])
local stored = redis.call('HMGET', h, 'sequence', 'as_of', 'segment', 'tier')
local sseq = tonumber(stored[1]) or -1
local sasof = stored[2] or ''
if seq < sseq or (seq == sseq and asof < sasof) then return 0 end
local i = 7
for _ = 1, n do
  if tonumber(ARGV[i + 1]) > sseq then
    redis.call('XADD', prefix .. ARGV[i], 'MAXLEN', '~', maxlen, '*', 'event_id', ARGV[i + 2], 'json', ARGV[i + 3])
    if ARGV[i + 4] ~= '' then redis.call('PUBLISH', prefix .. ARGV[i + 4], ARGV[i + 3]) end
  end
  i = i + 5
end
local names = {{{", ".join(f"'{name}'" for name in HASH_FIELDS)}}}
local fields = {{}}
for j, name in ipairs(names) do
  fields[2 * j - 1] = name
  fields[2 * j] = ARGV[i + j - 1]
end
local segment, tier = ARGV[i + {HASH_FIELDS.index("segment")}], ARGV[i + {HASH_FIELDS.index("tier")}]
redis.call('HSET', h, unpack(fields))
if stored[3] ~= segment or stored[4] ~= tier then
  if stored[3] and stored[4] then
    redis.call('SREM', prefix .. 'members:' .. stored[3] .. ':' .. stored[4], cid)
  end
  redis.call('SADD', prefix .. 'members:' .. segment .. ':' .. tier, cid)
end
return 1
"""


class RedisTierSink:
    """Writes through one pipelined server-side script call per customer evaluation."""

    def __init__(
        self,
        url: str,
        prefix: str,
        maxlen: int = STREAM_MAXLEN,
        command_timeout: float = COMMAND_TIMEOUT,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        """``url``: redis:// or rediss:// (TLS), with the ACL user and password in it or given
        apart (the URL's win); ``ca_file``: the CA bundle a rediss:// server is checked against."""
        self.prefix = prefix
        self.maxlen = maxlen
        options: dict[str, Any] = {"socket_timeout": command_timeout, "socket_connect_timeout": 5.0}
        options.update((k, v) for k, v in (("username", username), ("password", password)) if v is not None)
        if ca_file is not None:
            options["ssl_ca_certs"] = ca_file
        # no retries of its own: ``write`` tries again, with a fresh pipeline (scripts checked)
        self.client = aioredis.Redis.from_url(url, **options)
        self._script = self.client.register_script(_APPLY)
        self.unavailable_since: float | None = None  # monotonic time writes began to wait

    def hash_key(self, customer_id: str) -> str:
        return f"{self.prefix}customer:{customer_id}"

    async def write(self, writes: Sequence[CustomerWrite]) -> None:
        """Apply ``writes``, waiting for Redis as long as it takes (see the module's doc)."""
        if not writes:
            return
        delay, warned = RETRY_FIRST, 0.0
        while True:
            try:
                await self._apply(writes)
            except UNAVAILABLE as e:
                now = time.monotonic()
                if self.unavailable_since is None:
                    self.unavailable_since = now
                if now - warned >= WARN_EVERY:
                    warned = now
                    event(
                        log,
                        logging.WARNING,
                        "redis_unavailable",
                        waiting_seconds=round(now - self.unavailable_since, 1),
                        writes=len(writes),
                        error=repr(e),
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_CAP)
                continue
            if self.unavailable_since is not None:
                event(
                    log,
                    logging.WARNING,
                    "redis_back",
                    unavailable_seconds=round(time.monotonic() - self.unavailable_since, 1),
                )
                self.unavailable_since = None
            return

    async def _apply(self, writes: Sequence[CustomerWrite]) -> None:
        """One pipeline of guarded script calls (a replayed one changes nothing)."""
        pipe = self.client.pipeline(transaction=False)
        for w in writes:
            args: list[str | bytes | int] = [
                w.customer_id,
                w.sequence,
                w.as_of,
                self.prefix,
                self.maxlen,
                len(w.entries),
            ]
            for e in w.entries:
                args += [e.stream, e.sequence, e.event_id, e.json, e.channel or ""]
            args += [w.fields[name] for name in HASH_FIELDS]
            await self._script(keys=[self.hash_key(w.customer_id)], args=args, client=pipe)
        await pipe.execute()

    async def tier_sizes(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        async with self.client.pipeline(transaction=False) as pipe:
            for segment, tier in pairs:
                pipe.scard(f"{self.prefix}members:{segment}:{tier}")
            return [int(n) for n in await pipe.execute()]

    async def ping(self, timeout: float) -> bool:
        try:
            return bool(await asyncio.wait_for(self.client.ping(), timeout))
        except (TimeoutError, *UNAVAILABLE):
            return False

    async def close(self) -> None:
        await self.client.aclose()


class MemoryTierSink:
    """The same rules as the script, in memory (for agent tests without a server)."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}
        self.members: dict[tuple[str, str], set[str]] = {}
        self.streams: dict[str, list[tuple[str, bytes]]] = {}
        self.published: list[tuple[str, bytes]] = []  # (channel, message)

    async def write(self, writes: Sequence[CustomerWrite]) -> None:
        for w in writes:
            stored = self.hashes.get(w.customer_id, {})
            sseq = int(stored.get("sequence", -1))
            if w.sequence < sseq or (w.sequence == sseq and w.as_of < stored.get("as_of", "")):
                continue
            for e in w.entries:
                if e.sequence > sseq:
                    self.streams.setdefault(e.stream, []).append((e.event_id, e.json))
                    if e.channel is not None:
                        self.published.append((e.channel, e.json))
            if stored and (stored["segment"], stored["tier"]) != (w.fields["segment"], w.fields["tier"]):
                self.members.get((stored["segment"], stored["tier"]), set()).discard(w.customer_id)
            self.hashes[w.customer_id] = {**stored, **w.fields}
            self.members.setdefault((w.fields["segment"], w.fields["tier"]), set()).add(w.customer_id)

    async def tier_sizes(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        return [len(self.members.get(pair, ())) for pair in pairs]

    async def ping(self, timeout: float) -> bool:
        return True

    async def close(self) -> None:
        return None
