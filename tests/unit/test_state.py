"""Customer state stays bounded and survives serialisation."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring.engine import Engine
from scoring.projection import customer_view
from scoring.state import CustomerState
from scoring.step import PRUNE_SLACK_DAYS
from streams.rules_file import load_rules
from tests.bank import Bank, Writing, days

RULES = load_rules()


def busy_customer(n_days: int, engine: Engine | None = None) -> Bank:
    """Three accounts changing daily, five transactions a day, a close every day."""
    bank = Bank(engine=engine)
    for i, d in enumerate(days("2026-01-01", n_days)):
        bank.balance("c1", d, str(50000 + i * 37), account="cur", product="current")
        bank.balance("c1", d, str(200000 + i * 11), account="sav")
        bank.balance("c1", d, str(90000 - i * 13), account="loan", product="loan")
        for k in range(5):
            bank.txn("c1", d, str(10 + k), time=f"1{k}:00:00", kind="card_spend" if k else "fee")
        bank.eod(d)
    return bank


def test_state_stays_bounded_as_days_pass() -> None:
    sizes = [len(busy_customer(n).state("c1").to_bytes()) for n in (120, 300)]
    # after the longest window has filled, more days add nothing
    assert abs(sizes[1] - sizes[0]) < 64
    st = busy_customer(120).state("c1")
    assert len(st.balances.days) <= 92 and len(st.flows.days) <= 92
    assert all(len(snaps) <= 9 for snaps in st.accounts.values())  # lateness 7 + base + today
    assert len(st.seen) <= 8 * 8  # 8 events a day, 8 days that are not late yet


def test_a_state_read_back_from_what_a_worker_wrote_stays_bounded() -> None:
    # closes write what a roll-off forgot only once it is PRUNE_SLACK_DAYS old: a worker
    # that reads every state back from its store (no cache) carries at most that much more
    for n in (120, 211, 300):
        engine = busy_customer(n, Writing(RULES, from_written=True)).engine
        stored = CustomerState.from_bytes(engine.written["c1"])  # type: ignore[attr-defined]
        live = busy_customer(n).state("c1")
        assert len(stored.flows.days) <= len(live.flows.days) + PRUNE_SLACK_DAYS
        assert len(stored.balances.days) <= len(live.balances.days) + PRUNE_SLACK_DAYS
        assert len(set(stored.seen.values())) <= len(set(live.seen.values())) + PRUNE_SLACK_DAYS
        for account, snaps in stored.accounts.items():
            assert len(snaps) <= len(live.accounts[account]) + PRUNE_SLACK_DAYS


def test_state_round_trips_and_continues_identically() -> None:
    a = busy_customer(40)
    b = busy_customer(40)
    b.engine.states["c1"] = CustomerState.from_bytes(b.state("c1").to_bytes())
    assert b.state("c1") == a.state("c1")
    for bank in (a, b):
        bank.balance("c1", "2026-02-10", "1", account="sav")
        bank.eod("2026-02-10")
    assert a.outputs[-3:] == b.outputs[-3:]
    assert customer_view(a.state("c1"), a.engine.clock, a.engine.rules) == customer_view(
        b.state("c1"), b.engine.clock, b.engine.rules
    )


def test_state_with_huge_transaction_sums_round_trips() -> None:
    bank = Bank()
    for i in range(40):  # (2 x 10**13 cents)**2 x 40 is far beyond 64 bits
        bank.txn("c1", "2026-11-01", "200000000000.00", time=f"10:{i:02d}:00")
    st = bank.state("c1")
    assert st.txn_sumsq > 2**64
    assert CustomerState.from_bytes(st.to_bytes()) == st


def test_a_state_written_in_version_1_is_read_by_this_code() -> None:
    # written by the version 1 encoder (JSON) for busy_customer(12); kept as a file because
    # no code here writes version 1 any more
    written = (Path(__file__).parent / "data" / "state_v1.json").read_bytes()
    assert written.startswith(b"[1,")
    assert CustomerState.from_bytes(written) == busy_customer(12).state("c1")


def test_the_binary_encoding_is_smaller_than_version_1_and_exact() -> None:
    st = busy_customer(12).state("c1")
    v1 = (Path(__file__).parent / "data" / "state_v1.json").read_bytes()
    assert len(st.to_bytes()) < 0.8 * len(v1)
    assert CustomerState.from_bytes(st.to_bytes()) == st


@pytest.mark.parametrize("data", [b"", b"\x07abc", b'[3,"c1"]'])
def test_bytes_that_are_no_state_are_refused_with_a_reason(data: bytes) -> None:
    with pytest.raises(ValueError, match="state"):
        CustomerState.from_bytes(data)
