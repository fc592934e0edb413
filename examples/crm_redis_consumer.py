"""How a CRM consumes tierstream's tier changes from the Redis stream, correctly.

- A **consumer group** (``XREADGROUP``): several CRM processes share the stream, each entry
  goes to one of them, and stays *pending* until it is acknowledged (``XACK``) — after
  the CRM applied it.
- **Reclaim** (``XAUTOCLAIM``): entries a consumer read and never acknowledged (it died)
  are taken over by another once they have been pending for ``claim_idle_ms``.
- **Idempotent by sequence** (``CrmStore``): a reclaimed entry may have been applied
  already; the customer's sequence says so.
- **Gaps**: the stream keeps ``TIERSTREAM_STREAM_MAXLEN`` entries (approximately). A
  group whose last delivered entry is older than the stream's first one has missed
  entries: it reads every customer's current tier from the Redis hashes (``resync``)
  and goes on from the stream. A new CRM starts the same way.

Run: ``python -m examples.crm_redis_consumer --redis-url redis://localhost:6379/0``.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from examples.crm_store import CrmStore, arguments


class TierChangeConsumer:
    def __init__(
        self,
        client: redis.Redis,
        store: CrmStore,
        prefix: str = "tier:",
        group: str = "crm",
        name: str = "crm-1",
        claim_idle_ms: int = 60_000,
        count: int = 500,
    ) -> None:
        self.client = client
        self.store = store
        self.prefix = prefix
        self.stream = f"{prefix}changes"
        self.group = group
        self.name = name
        self.claim_idle_ms = claim_idle_ms
        self.count = count

    def start(self) -> None:
        """Join (or create) the group; resync from the hashes if entries were trimmed unread."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        if self.missed_entries():
            self.resync()

    def missed_entries(self) -> bool:
        """Whether entries this group never read were trimmed from the stream (the oldest
        ``entries-added - length`` are gone; the group has read its first ``entries-read``)."""
        info = self.client.xinfo_stream(self.stream)
        trimmed = int(info["entries-added"]) - int(info["length"])
        if trimmed == 0:
            return False
        group = next(g for g in self.client.xinfo_groups(self.stream) if g["name"].decode() == self.group)
        if group.get("entries-read") is not None:
            return int(group["entries-read"]) < trimmed
        first = info["first-entry"]  # the server cannot tell: by ids, erring towards a resync
        return first is not None and _id(group["last-delivered-id"]) < _id(first[0])

    def resync(self) -> int:
        """Every customer's current tier from its hash (``{prefix}customer:{id}``)."""
        changed = 0
        for key in self.client.scan_iter(f"{self.prefix}customer:*", count=1000):
            h: Any = self.client.hgetall(key)  # redis-py's sync replies are typed loosely
            cid = key.decode().removeprefix(f"{self.prefix}customer:")
            changed += self.store.resync(cid, h[b"segment"].decode(), h[b"tier"].decode(), int(h[b"sequence"]))
        return changed

    def poll(self, block_ms: int = 1000) -> int:
        """Take over entries left pending by a dead consumer, then read new ones; apply and
        acknowledge each. Returns how many entries were handled."""
        entries = self._claim()
        if not entries:
            reply: Any = self.client.xreadgroup(
                self.group, self.name, {self.stream: ">"}, count=self.count, block=block_ms
            )
            entries = [e for _, stream_entries in reply for e in stream_entries]
        for entry_id, fields in entries:
            self.store.apply(json.loads(fields[b"json"]))
            self.client.xack(self.stream, self.group, entry_id)  # after the CRM's commit: at least once
        return len(entries)

    def _claim(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        reply: Any = self.client.xautoclaim(
            self.stream, self.group, self.name, min_idle_time=self.claim_idle_ms, start_id="0-0", count=self.count
        )
        entries: list[tuple[bytes, dict[bytes, bytes]]] = reply[1]
        for deleted in reply[2] if len(reply) > 2 else []:  # trimmed while pending: nothing to apply
            self.client.xack(self.stream, self.group, deleted)
        return [(i, f) for i, f in entries if f]


def _id(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def main() -> None:
    args = arguments(__doc__, redis_url="redis://127.0.0.1:6379/0", prefix="tier:", group="crm", name="crm-1")
    client = redis.Redis.from_url(args.redis_url)
    consumer = TierChangeConsumer(client, CrmStore(args.db), args.prefix, args.group, args.name)
    consumer.start()
    while True:
        consumer.poll()


if __name__ == "__main__":
    main()
