"""The customer table's contract, for both stores: what is put is what is read and scanned,
in id order, whichever of memory, cache, staged bytes and disk holds it; the local store
writes only what the changelog made durable, and says where its copy ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scoring.state import CustomerState
from streams.changelog import encode_progress
from streams.local_store import LocalStore
from streams.outbox import Stored, encode_stored
from streams.routing import partition_of
from streams.scorer import Progress
from streams.table import CLOCK_KEY, CustomerTable, MemoryTable, StoreTable

N = 4


class Tables:
    """A table and what stands for its changelog (a list, and the local store's staging)."""

    def __init__(self, kind: str, path: Path) -> None:
        self.path = path
        self.local: LocalStore | None = None
        self.table: CustomerTable = MemoryTable(N)
        self.log: list[tuple[int, bytes, bytes]] = []
        if kind == "rocksdb":
            self.open()

    def open(self) -> None:
        self.local = LocalStore(self.path, "test")
        self.table = StoreTable(N, self.local, cache_size=2)

    def checkpoint(self, commit: bool = True) -> None:
        for q, cid, value in self.table.take_changed():
            self.log.append((q, cid.encode(), encode_stored(value)))
            if self.local is not None:
                self.local.stage(q, cid.encode(), encode_stored(value))
        if commit and self.local is not None:
            self.local.flush_begins()
            self.local.flushed(self.ends())

    def ends(self) -> dict[int, int]:
        return {q: sum(1 for p, _, _ in self.log if p == q) for q in range(N)}


@pytest.fixture(params=["memory", "rocksdb"])
def tables(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Tables]:
    t = Tables(request.param, tmp_path / "store")
    yield t
    if t.local is not None:
        t.local.close()


def value(cid: str, sequence: int, outbox: bool = False) -> Stored:
    state = CustomerState(cid, "retail", 739000, 739001, tier="mass", sequence=sequence)
    return Stored(state, [(sequence, b'{"sequence":%d}' % sequence)] if outbox else [])


def put(t: Tables, cid: str, sequence: int, outbox: bool = False) -> None:
    t.table.put(partition_of(cid, N), cid, value(cid, sequence, outbox))


def scanned(table: CustomerTable, q: int, only_outboxes: bool = False) -> list[tuple[str, int]]:
    return [(cid, v.state.sequence) for cid, v in table.scan(q, only_outboxes)]


def ids(q: int, count: int) -> list[str]:
    """``count`` customer ids of partition ``q``."""
    out, i = [], 0
    while len(out) < count:
        if partition_of(f"c{i}", N) == q:
            out.append(f"c{i}")
        i += 1
    return out


def test_values_are_read_and_scanned_in_id_order_wherever_they_are_kept(tables: Tables) -> None:
    a, b, c, d, e = sorted(ids(1, 5))
    put(tables, a, 1)
    put(tables, c, 1)
    tables.checkpoint()  # on disk
    put(tables, b, 1)
    put(tables, d, 1)
    tables.checkpoint(commit=False)  # staged, then evicted from the cache of two
    put(tables, c, 2)
    put(tables, e, 1)  # changed since the checkpoint: only in memory
    want = sorted([(a, 1), (b, 1), (c, 2), (d, 1), (e, 1)])
    assert scanned(tables.table, 1) == want
    assert [(cid, tables.table.get(cid).state.sequence) for cid, _ in want] == want  # type: ignore[union-attr]
    assert scanned(tables.table, 2) == [] and tables.table.get("nobody") is None
    tables.checkpoint()
    assert scanned(tables.table, 1) == want


def test_a_scan_can_keep_only_values_with_outputs_to_send_again(tables: Tables) -> None:
    a, b, c = ids(0, 3)
    put(tables, a, 1, outbox=True)
    put(tables, b, 1)
    tables.checkpoint()
    put(tables, c, 1, outbox=True)
    put(tables, ids(1, 1)[0], 1, outbox=True)  # another partition's
    assert scanned(tables.table, 0, only_outboxes=True) == sorted([(a, 1), (c, 1)])
    put(tables, a, 2)  # its outbox acknowledged
    tables.checkpoint()
    assert scanned(tables.table, 0, only_outboxes=True) == [(c, 1)]
    if tables.local is not None:  # the store's index says so too (it spares decoding the rest)
        assert list(tables.local.with_outbox(0)) == [c.encode()]
        tables.local.close()
        tables.open()
        assert scanned(tables.table, 0, only_outboxes=True) == [(c, 1)]


def test_the_changed_values_are_taken_once(tables: Tables) -> None:
    a, b = ids(3, 2)
    put(tables, a, 1)
    put(tables, a, 2)
    put(tables, b, 1)
    assert tables.table.changed() == 2
    assert sorted((cid, v.state.sequence) for _, cid, v in tables.table.take_changed()) == [(a, 2), (b, 1)]
    assert tables.table.changed() == 0 and tables.table.take_changed() == []


def test_a_local_store_reopened_holds_what_was_committed_and_says_where_its_copy_ends(tmp_path: Path) -> None:
    t = Tables("rocksdb", tmp_path / "store")
    a, b = sorted(ids(2, 2))
    put(t, a, 1)
    t.checkpoint()
    put(t, b, 1)
    t.checkpoint(commit=False)  # appended to the changelog, never flushed: lost by the crash
    assert t.local is not None
    t.local.close()
    t.open()
    assert t.table.recovery_start(2) == 1  # the changelog past offset 1 is read again
    assert scanned(t.table, 2) == [(a, 1)]
    t.table.recovered(2, [(b.encode(), t.log[1][2]), (CLOCK_KEY, encode_progress(739001, Progress(7)))], 3)
    assert t.table.recovery_done(2) == (None, encode_progress(739001, Progress(7)))  # not counted
    assert scanned(t.table, 2) == [(a, 1), (b, 1)] and t.table.recovery_start(2) == 3
    put(t, ids(0, 1)[0], 1)
    t.checkpoint()  # this worker's acknowledgements in partition 2 end at 2: its mark stays
    assert t.table.recovery_start(2) == 3 and t.table.recovery_start(0) == 1
    t.table.drop(2)  # given away: memory forgets, the store keeps it for when it comes back
    assert scanned(t.table, 2) == [(a, 1), (b, 1)]
    t.table.recovery_reset(2)  # a changelog that no longer holds the mark
    assert scanned(t.table, 2) == [] and t.table.recovery_start(2) is None
    t.local.close()


def test_a_local_store_made_for_another_changelog_is_emptied(tmp_path: Path) -> None:
    t = Tables("rocksdb", tmp_path / "store")
    put(t, "c1", 1)
    t.checkpoint()
    assert t.local is not None
    t.local.close()
    other = LocalStore(tmp_path / "store", "another changelog")
    assert StoreTable(N, other, 2).get("c1") is None and other.mark(partition_of("c1", N)) is None
    other.close()


def test_a_memory_table_recovers_the_latest_value_of_each_customer() -> None:
    t = MemoryTable(N)
    (a,) = ids(1, 1)
    t.recovered(1, [(a.encode(), encode_stored(value(a, 1))), (a.encode(), encode_stored(value(a, 2)))], 2)
    t.recovered(1, [(CLOCK_KEY, b"739001 5 ")], 3)
    assert t.recovery_done(1) == (1, b"739001 5 ")
    assert scanned(t, 1) == [(a, 2)] and t.recovery_start(1) is None
    t.drop(1)
    assert t.get(a) is None and scanned(t, 1) == []
