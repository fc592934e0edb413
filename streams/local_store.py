"""A worker's local copy of the customer table's changelog, on disk (RocksDB, ``rocksdict``).

It holds, per routed partition, what the changelog partition holds up to an offset (its
*mark*): the latest value of every key, raw, as the changelog has it (customers' encoded
table values and, under the empty key, the partition's clock and progress). What the worker
appends to the changelog is staged here too (``stage``) and written at the worker's commit,
once the producer has flushed it, together with the changelog offsets the broker
acknowledged (``persist``): one atomic write batch. So the store is never ahead of the
changelog, and a restarted worker reads only the changelog past its mark
(``streams.changelog.recover``); a partition given away keeps its data and mark, so getting
it back reads only what its other owners wrote meanwhile.

Keys are the routed partition (2 bytes, big-endian) then the changelog key: a partition's
customers are one key range, in the order of their ids (UTF-8 bytes sort as code points).
An index of the customers whose value holds an outbox (outputs to send again when the
partition is taken over) is kept beside them, in the same write batches.
"""

from __future__ import annotations

import logging
import shutil
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import cast

from rocksdict import DBCompressionType, Options, Rdict, ReadOptions, WriteBatch

from streams.logs import event
from streams.outbox import has_outbox

log = logging.getLogger("tierstream")

_PARTITION = struct.Struct(">H")
_OFFSET = struct.Struct(">q")
_META = b"\xff\xff"  # above every partition's range (partitions < 65535)
_IDENTITY = _META + b"identity"
_MARK = _META + b"mark"
_OUTBOXES = _META + b"outbox"  # + partition + customer id: b"" while the value has an outbox
MAX_PARTITIONS = 0xFFFF
WRITE_BATCH = 5_000  # records per write batch while a changelog is read into the store


class LocalStore:
    """The local changelog copy of one worker (one directory; RocksDB locks it)."""

    def __init__(self, path: Path, identity: str) -> None:
        """Open (or create) the store at ``path`` for ``identity`` (the changelog topic and
        partition count): a store made for another identity is emptied first, since its
        keys would sit in the wrong partitions."""
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_compression_type(DBCompressionType.lz4())  # states compress ~2x, at little CPU
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = Rdict(str(path), options)
        found = self.db.get(_IDENTITY)
        if found is not None and found != identity.encode():
            event(log, logging.WARNING, "local_store_reset", path=path, was=found.decode(), now=identity)
            self.db.close()
            shutil.rmtree(path)
            path.mkdir(parents=True)
            self.db = Rdict(str(path), options)
        self.db[_IDENTITY] = identity.encode()
        self._staged: dict[bytes, bytes] = {}  # appended to the changelog since the last flush began
        self._flushing: dict[bytes, bytes] = {}  # appended before the flush under way

    def close(self) -> None:
        self.db.close()

    # --- what the worker writes -------------------------------------------------------

    def stage(self, q: int, key: bytes, value: bytes) -> None:
        """A record appended to changelog partition ``q``: persisted at the next commit."""
        self._staged[_PARTITION.pack(q) + key] = value

    def flush_begins(self) -> None:
        """The producer is about to flush: what was staged so far is what it makes durable."""
        self._flushing.update(self._staged)
        self._staged = {}

    def flushed(self, marks: dict[int, int]) -> None:
        """The flush is done: write what it made durable, with the changelog offsets the broker
        acknowledged (``marks``: per partition, the offset after its last record). Nothing
        may ship changelog records between ``flush_begins`` and this (the runtime's lock),
        so the marks cover exactly the records staged before the flush."""
        batch = WriteBatch(raw_mode=True)
        written = set()
        for key, value in self._flushing.items():
            _put(batch, key, value)
            written.add(key[: _PARTITION.size])
        for q, end in marks.items():
            # only where this flush wrote: a partition given away and recovered again since
            # has a later mark than this worker's last acknowledgement in it
            if _PARTITION.pack(q) in written:
                batch.put(_MARK + _PARTITION.pack(q), _OFFSET.pack(end))
        self.db.write(batch)
        self._flushing = {}

    # --- what recovery writes ---------------------------------------------------------

    def load(self, q: int, records: Iterable[tuple[bytes, bytes]], mark: int) -> None:
        """Changelog records of partition ``q`` read from the broker, up to ``mark``."""
        batch = WriteBatch(raw_mode=True)
        prefix = _PARTITION.pack(q)
        for key, value in records:
            _put(batch, prefix + key, value)
        batch.put(_MARK + prefix, _OFFSET.pack(mark))
        self.db.write(batch)

    def forget(self, q: int) -> None:
        """Drop partition ``q``'s data and mark (its changelog no longer matches them)."""
        self.db.delete_range(_PARTITION.pack(q), _PARTITION.pack(q + 1))
        self.db.delete_range(_OUTBOXES + _PARTITION.pack(q), _OUTBOXES + _PARTITION.pack(q + 1))
        self.db.delete(_MARK + _PARTITION.pack(q))
        prefix = _PARTITION.pack(q)
        self._staged = {k: v for k, v in self._staged.items() if not k.startswith(prefix)}
        self._flushing = {k: v for k, v in self._flushing.items() if not k.startswith(prefix)}

    # --- reading ----------------------------------------------------------------------

    def mark(self, q: int) -> int | None:
        """The changelog offset partition ``q`` is copied up to; None: nothing copied."""
        raw = self.db.get(_MARK + _PARTITION.pack(q))
        return None if raw is None else int(_OFFSET.unpack(raw)[0])

    def get(self, q: int, key: bytes) -> bytes | None:
        full = _PARTITION.pack(q) + key
        for unwritten in (self._staged, self._flushing):
            if full in unwritten:
                return unwritten[full]
        return cast(bytes | None, self.db.get(full))

    def items(self, q: int) -> Iterator[tuple[bytes, bytes]]:
        """Partition ``q``'s persisted records in key order (changelog keys, without the prefix)."""
        read = ReadOptions()
        read.set_iterate_upper_bound(_PARTITION.pack(q + 1))
        for key, value in cast(
            Iterator[tuple[bytes, bytes]], self.db.items(from_key=_PARTITION.pack(q), read_opt=read)
        ):
            yield key[_PARTITION.size :], value

    def with_outbox(self, q: int) -> Iterator[bytes]:
        """Partition ``q``'s persisted customers whose value holds an outbox, in order."""
        start = _OUTBOXES + _PARTITION.pack(q)
        read = ReadOptions()
        read.set_iterate_upper_bound(_OUTBOXES + _PARTITION.pack(q + 1))
        for key in cast(Iterator[bytes], self.db.keys(from_key=start, read_opt=read)):
            yield key[len(start) :]

    def unwritten(self, q: int) -> dict[bytes, bytes]:
        """Partition ``q``'s records appended but not written yet (changelog keys)."""
        prefix = _PARTITION.pack(q)
        return {k[_PARTITION.size :]: v for k, v in {**self._flushing, **self._staged}.items() if k.startswith(prefix)}


def _put(batch: WriteBatch, key: bytes, value: bytes) -> None:
    """A changelog record into the batch, with its outbox index entry."""
    batch.put(key, value)
    if len(key) > _PARTITION.size:  # a customer (the clock's key is the partition alone)
        if has_outbox(value):
            batch.put(_OUTBOXES + key, b"")
        else:
            batch.delete(_OUTBOXES + key)
