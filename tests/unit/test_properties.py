"""Properties of the core (contract §8) checked over generated streams."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import topics
from scoring.engine import Engine
from scoring.outputs import Source
from scoring.projection import customer_view
from scoring.state import CustomerState
from tests.bank import DEFAULT_DOC, Writing, rules_with

RULES = rules_with(
    **{
        "segments.retail.upgrade_protection_days": 1,
        "segments.retail.downgrade_grace_days": 1,
        "segments.retail.downgrade_metric": "aum_avg_7d",
        "risk.anomalous_transaction.min_history": 3,
    }
)
CUSTOMERS = ["c1", "c2", "c3"]
RETAIL_TIERS = [t["name"] for t in DEFAULT_DOC["segments"]["retail"]["tiers"]]
DAY0 = 20  # 2026-11-20 .. 2026-11-26: a span within the 7-day lateness allowance

Record = tuple[topics.Topic, dict[str, Any]]


@st.composite
def customer_events(draw: st.DrawFn, n: int) -> list[Record]:
    """Customer events over one week, each with its own instant (so "latest by ts" has no ties)."""
    instants = draw(st.lists(st.integers(0, 7 * 86_400 - 1), min_size=n, max_size=n, unique=True))
    records: list[Record] = []
    for i, second in enumerate(instants):
        day, rest = divmod(second, 86_400)
        ts = f"2026-11-{DAY0 + day:02d}T{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}Z"
        base = {"event_id": f"e{i}", "customer_id": draw(st.sampled_from(CUSTOMERS)), "ts": ts}
        kind = draw(st.sampled_from(["balance", "balance", "txn", "txn", "profile"]))
        if kind == "balance":
            value = {
                **base,
                "account_id": draw(st.sampled_from(["a1", "a2", "l1"])),
                "product": draw(st.sampled_from(["savings", "fund", "loan", "current"])),
                "balance": f"{draw(st.integers(0, 3_000_000_00)) / 100:.2f}",
                "currency": draw(st.sampled_from(["CNY", "CNY", "USD", "HKD"])),
            }
            records.append((topics.BALANCES, value))
        elif kind == "txn":
            value = {
                **base,
                "account_id": "a1",
                "amount": f"{draw(st.integers(1, 500_000_00)) / 100:.2f}",
                "currency": draw(st.sampled_from(["CNY", "EUR"])),
                "direction": draw(st.sampled_from(["debit", "credit"])),
                "kind": draw(st.sampled_from(["card_spend", "fee", "transfer_out", "deposit", "interest"])),
                "counterparty_bank": draw(st.sampled_from([None, "BANKA", "BANKB"])),
            }
            records.append((topics.TRANSACTIONS, value))
        else:
            value = {
                **base,
                "segment": "retail",
                "rm_id": draw(st.sampled_from([None, "rm1"])),
                "tier_override": draw(st.sampled_from([None, None, *RETAIL_TIERS])),
            }
            records.append((topics.CUSTOMERS, value))
    return records


def eod(day: int) -> Record:
    return (topics.EOD, {"event_id": f"eod{day}", "business_date": f"2026-11-{DAY0 + day:02d}"})


@st.composite
def streams(draw: st.DrawFn) -> list[Record]:
    """Customer events with day closes of the same week in between (nothing can be late)."""
    events = draw(customer_events(draw(st.integers(1, 40))))
    closes = sorted(draw(st.lists(st.integers(0, 6), max_size=4)))
    for day in closes:
        events.insert(draw(st.integers(0, len(events))), eod(day))
    return events


def run(records: list[Record], engine: Engine | None = None) -> tuple[Engine, list[dict[str, Any]]]:
    engine = engine or Engine(RULES)
    outputs: list[dict[str, Any]] = []
    for offset, (topic, value) in enumerate(records):
        outputs += [o.value for o in engine.process(topic, Source(topic.name, 0, offset, None, orjson.dumps(value)))]
    return engine, outputs


def views(engine: Engine) -> dict[str, dict[str, str]]:
    return {cid: customer_view(s, engine.clock, engine.rules) for cid, s in engine.states.items()}


@settings(max_examples=150, deadline=None)
@given(streams(), st.randoms(use_true_random=False))
def test_final_metrics_do_not_depend_on_arrival_order(records: list[Record], rnd: Any) -> None:
    shuffled = [r for r in records if r[0] is not topics.EOD]
    rnd.shuffle(shuffled)
    slots = iter(shuffled)
    reordered = [r if r[0] is topics.EOD else next(slots) for r in records]  # closes stay put
    tail = [eod(6)]
    a, _ = run(records + tail)
    b, _ = run(reordered + tail)
    va, vb = views(a), views(b)
    assert va.keys() == vb.keys()
    for cid in va:
        for field in ("metrics", "as_of", "segment", "metric", "metric_value"):
            assert va[cid][field] == vb[cid][field], (cid, field)


@settings(max_examples=150, deadline=None)
@given(streams(), st.data())
def test_every_valid_event_sent_twice_changes_nothing(records: list[Record], data: st.DataObject) -> None:
    doubled = list(records)
    for topic, value in records:
        if topic is topics.EOD:
            continue
        # a copy with the same id (and different content) somewhere after the original
        at = doubled.index((topic, value)) + 1
        copy = dict(value)
        for money in ("balance", "amount"):
            if money in copy:
                copy[money] = "1.00"
        doubled.insert(data.draw(st.integers(at, len(doubled))), (topic, copy))
    a, out_a = run(records)
    b, out_b = run(doubled)
    assert out_a == out_b
    assert {c: s.to_bytes() for c, s in a.states.items()} == {c: s.to_bytes() for c, s in b.states.items()}
    assert b.counters.duplicates == len(records) - sum(1 for r in records if r[0] is topics.EOD)


def _ranks(segment: str) -> dict[str, int]:
    return {t["name"]: i for i, t in enumerate(DEFAULT_DOC["segments"][segment]["tiers"])}


@settings(max_examples=150, deadline=None)
@given(streams())
def test_tier_never_changes_without_a_threshold_crossing(records: list[Record]) -> None:
    _, outputs = run([*records, eod(6)])
    for o in outputs:
        if o["type"] != "tier_change":
            continue
        rank = _ranks(o["segment"])
        value, threshold = o["metric_value"], o["threshold"]
        if threshold is None:  # only a pinned tier has no threshold
            assert o["direction"] in ("initial", "override", "segment_change")
            continue
        # rounding to the cent cannot cross a line drawn in whole cents, so compare inclusively
        if o["direction"] == "downgrade":
            assert Decimal(value) <= Decimal(threshold)
            assert rank[o["tier"]] < rank[o["previous_tier"]]
        else:
            assert Decimal(value) >= Decimal(threshold)
            if o["direction"] == "upgrade":
                assert rank[o["tier"]] > rank[o["previous_tier"]]


@settings(max_examples=100, deadline=None)
@given(streams(), st.data())
def test_a_state_restored_from_bytes_continues_identically(records: list[Record], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(records)))
    _, out_whole = run(records)
    first, out_first = run(records[:cut])
    first.states = {c: CustomerState.from_bytes(s.to_bytes()) for c, s in first.states.items()}
    _, out_rest = run(records[cut:], first)
    assert out_first + out_rest == out_whole


@settings(max_examples=80, deadline=None)
@given(streams(), st.integers(1, 60), st.data())
def test_what_a_worker_writes_recovers_states_that_continue_identically(
    records: list[Record], silent: int, data: st.DataObject
) -> None:
    """Closes write a state only when they report a change, so what they forget (a roll-off
    less than a week old, event ids that have become late) is often not written: the
    recovered state may hold more than the live one. It must not matter: after the
    generated week, ``silent`` days of closes, then the week's events again with their ids
    and a day that is not late (new events that reuse old ids), a worker recovered from what
    was written at any point publishes what the live one publishes."""
    last = date(2026, 11, DAY0 + 7) + timedelta(days=silent)
    later = [(topics.EOD, {"event_id": f"eod-{d}", "business_date": d.isoformat()}) for d in days_until(last)]
    again = [(t, {**v, "ts": f"{last + timedelta(days=1)}T{v['ts'][11:]}"}) for t, v in records if t is not topics.EOD]
    stream = (
        records
        + later
        + again
        + [(topics.EOD, {"event_id": "eod-end", "business_date": str(last + timedelta(days=1))})]
    )
    _, whole = run(stream)
    cut = data.draw(st.integers(0, len(stream)))
    writing, first = run(stream[:cut], Writing(RULES))
    assert isinstance(writing, Writing)
    _, rest = run(stream[cut:], writing.recovered())
    assert first + rest == whole


def days_until(last: date) -> list[date]:
    """The days after the generated week up to ``last``."""
    first = date(2026, 11, DAY0 + 7)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
