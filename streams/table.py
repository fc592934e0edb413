"""The customer table: the table values (``streams.outbox.Stored``) of the routed partitions
a worker holds, in one of two stores (setting ``TIERSTREAM_STATE_STORE``):

- ``MemoryTable`` keeps every value decoded in memory: the fastest, for tests, the demo and
  workers holding up to some hundred thousand customers (a decoded state takes ~20 KB);
- ``StoreTable`` keeps the values encoded on local disk (``streams.local_store``, RocksDB)
  and only a bounded cache of decoded ones, least recently used first out, so memory does
  not grow with the customers; a restart reads only the changelog's tail.

Both are read and written by the scorer (``get``, ``put``, ``scan``), and both remember which
values changed since the last checkpoint (``take_changed``), which stay in memory until then.
Recovery from the changelog goes through ``recovery_start``/``recovered``/``recovery_done``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator

from streams.local_store import LocalStore
from streams.outbox import Stored, decode_stored
from streams.routing import partition_of

CLOCK_KEY = b""  # a partition's clock and progress in its changelog: no customer id is empty
Changed = list[tuple[int, str, Stored]]  # (routed partition, customer id, value)


class CustomerTable(ABC):
    def __init__(self, partitions: int) -> None:
        self.n_partitions = partitions
        self._changed: dict[str, tuple[int, Stored]] = {}  # since the last checkpoint

    def put(self, q: int, customer_id: str, value: Stored) -> None:
        """The customer's new value (in routed partition ``q``), for the next checkpoint."""
        self._changed[customer_id] = (q, value)

    def changed(self) -> int:
        return len(self._changed)

    def take_changed(self) -> Changed:
        """The values changed since the last call, for the changelog; they become clean."""
        changed, self._changed = self._changed, {}
        for cid, (q, value) in changed.items():
            self._clean(q, cid, value)
        return [(q, cid, value) for cid, (q, value) in changed.items()]

    @abstractmethod
    def _clean(self, q: int, customer_id: str, value: Stored) -> None:
        """Keep a value the changelog now has (``take_changed``)."""

    @abstractmethod
    def get(self, customer_id: str) -> Stored | None:
        """The customer's value, None for a customer not seen yet."""

    @abstractmethod
    def scan(self, q: int, only_outboxes: bool = False) -> Iterator[tuple[str, Stored]]:
        """Partition ``q``'s customers in the order of their ids (``only_outboxes``: those
        whose value has outputs to send again). The values are not cached: a close touches
        every customer once, and would evict the ones events touch."""

    @abstractmethod
    def drop(self, q: int) -> None:
        """Partition ``q`` was given to another worker: forget what is kept in memory."""

    # --- recovery from the changelog ----------------------------------------------------

    @abstractmethod
    def recovery_start(self, q: int) -> int | None:
        """The changelog offset to read partition ``q`` from; None: its beginning."""

    @abstractmethod
    def recovery_reset(self, q: int) -> None:
        """The changelog does not hold the offset ``recovery_start`` gave (a new topic):
        forget the partition; it is read from the beginning."""

    @abstractmethod
    def recovered(self, q: int, records: list[tuple[bytes, bytes]], next_offset: int) -> None:
        """Changelog records of partition ``q``, in order, read up to ``next_offset``."""

    @abstractmethod
    def recovery_done(self, q: int) -> tuple[int | None, bytes | None]:
        """Partition ``q`` is read to its end: its customer count (None: not counted) and
        clock record."""


class MemoryTable(CustomerTable):
    """Every value decoded in memory, with each partition's members."""

    def __init__(self, partitions: int) -> None:
        super().__init__(partitions)
        self.values: dict[str, Stored] = {}
        self.members: dict[int, set[str]] = {}
        self._recovering: dict[int, dict[bytes, bytes]] = {}  # only the latest value is decoded

    def get(self, customer_id: str) -> Stored | None:
        return self.values.get(customer_id)

    def put(self, q: int, customer_id: str, value: Stored) -> None:
        super().put(q, customer_id, value)
        self.values[customer_id] = value
        self.members.setdefault(q, set()).add(customer_id)

    def _clean(self, q: int, customer_id: str, value: Stored) -> None:
        pass  # kept in ``values`` already

    def scan(self, q: int, only_outboxes: bool = False) -> Iterator[tuple[str, Stored]]:
        for cid in sorted(self.members.get(q, ())):
            value = self.values[cid]
            if value.outbox or not only_outboxes:
                yield cid, value

    def drop(self, q: int) -> None:
        for cid in self.members.pop(q, ()):
            del self.values[cid]

    def recovery_start(self, q: int) -> int | None:
        return None

    def recovery_reset(self, q: int) -> None:
        raise AssertionError("a memory table is always read from the beginning")

    def recovered(self, q: int, records: list[tuple[bytes, bytes]], next_offset: int) -> None:
        self._recovering.setdefault(q, {}).update(records)

    def recovery_done(self, q: int) -> tuple[int | None, bytes | None]:
        latest = self._recovering.pop(q, {})
        clock = latest.pop(CLOCK_KEY, None)
        members = self.members.setdefault(q, set())
        for key, value in latest.items():
            cid = key.decode()
            self.values[cid] = decode_stored(value)
            members.add(cid)
        return len(members), clock


class StoreTable(CustomerTable):
    """Values encoded in a local store, a bounded cache of decoded ones in memory."""

    def __init__(self, partitions: int, store: LocalStore, cache_size: int) -> None:
        super().__init__(partitions)
        self.store = store
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Stored] = OrderedDict()  # clean values, least recent first

    def get(self, customer_id: str) -> Stored | None:
        changed = self._changed.get(customer_id)
        if changed is not None:
            return changed[1]
        value = self._cache.get(customer_id)
        if value is not None:
            self._cache.move_to_end(customer_id)
            return value
        raw = self.store.get(partition_of(customer_id, self.n_partitions), customer_id.encode())
        if raw is None:
            return None
        value = decode_stored(raw)
        self._cache_value(customer_id, value)
        return value

    def put(self, q: int, customer_id: str, value: Stored) -> None:
        super().put(q, customer_id, value)
        self._cache.pop(customer_id, None)  # the changed value is the one to read

    def _clean(self, q: int, customer_id: str, value: Stored) -> None:
        self._cache_value(customer_id, value)

    def _cache_value(self, customer_id: str, value: Stored) -> None:
        self._cache[customer_id] = value
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def scan(self, q: int, only_outboxes: bool = False) -> Iterator[tuple[str, Stored]]:
        # newer than the store: changed values, then the cache (clean values, equal to the
        # store's or to records not written to it yet), then those records
        newer: dict[str, Stored | bytes] = {k.decode(): v for k, v in self.store.unwritten(q).items() if k}
        newer.update((cid, v) for cid, v in self._cache.items() if partition_of(cid, self.n_partitions) == q)
        newer.update((cid, v) for cid, (p, v) in self._changed.items() if p == q)
        if only_outboxes:  # the store's index names its customers with one
            for cid in sorted({k.decode() for k in self.store.with_outbox(q)} | newer.keys()):
                found = newer.get(cid) or self.store.get(q, cid.encode())
                value = decode_stored(found) if isinstance(found, bytes) else found
                if value is not None and value.outbox:
                    yield cid, value
            return
        for cid, found in _merge(self.store.items(q), newer):
            yield cid, found if isinstance(found, Stored) else decode_stored(found)

    def drop(self, q: int) -> None:
        # the local store keeps the partition's values and mark: if it comes back, only
        # what its other owners wrote meanwhile is read
        for cid in [c for c in self._cache if partition_of(c, self.n_partitions) == q]:
            del self._cache[cid]

    def recovery_start(self, q: int) -> int | None:
        return self.store.mark(q)

    def recovery_reset(self, q: int) -> None:
        self.store.forget(q)

    def recovered(self, q: int, records: list[tuple[bytes, bytes]], next_offset: int) -> None:
        self.store.load(q, records, next_offset)

    def recovery_done(self, q: int) -> tuple[int | None, bytes | None]:
        return None, self.store.get(q, CLOCK_KEY)  # counting a million keys would take seconds


def _merge(
    stored: Iterator[tuple[bytes, bytes]], newer: dict[str, Stored | bytes]
) -> Iterator[tuple[str, Stored | bytes]]:
    """The store's customers (key order) with the newer values in place of theirs, and the
    customers only the newer values have, all in the order of their ids (a str's order is
    its UTF-8 bytes' order)."""
    extra = sorted(newer)
    i = 0
    for key, raw in stored:
        if not key:
            continue  # the partition's clock
        cid = key.decode()
        while i < len(extra) and extra[i] < cid:
            yield extra[i], newer[extra[i]]
            i += 1
        if i < len(extra) and extra[i] == cid:
            i += 1
        yield cid, newer.get(cid, raw)
    for cid in extra[i:]:
        yield cid, newer[cid]
