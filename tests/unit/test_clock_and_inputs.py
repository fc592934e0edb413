"""The business-day clock, late events, duplicates and dead letters (contract §4, §6, §7)."""

from __future__ import annotations

from schemas import topics
from scoring.clock import Clock
from scoring.days import parse_day
from scoring.processor import Processor
from streams.rules_file import load_rules
from tests.bank import Bank, by_aum, of_type, rules_with


def test_first_eod_closes_only_its_own_date() -> None:
    bank = Bank()
    bank.balance("c1", "2026-10-01", "100")
    bank.eod("2026-11-05")
    assert bank.engine.counters.days_closed == 1
    bank.eod("2026-11-08")  # closes 11-06, 11-07 and 11-08 in order
    assert bank.engine.counters.days_closed == 4


def test_eod_for_a_closed_day_does_nothing() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "100")
    bank.eod("2026-11-05")
    before = len(bank.outputs)
    assert bank.eod("2026-11-05") == [] and bank.eod("2026-11-03") == []
    assert len(bank.outputs) == before and bank.engine.counters.dead_letters == {}


def test_skipped_days_are_judged_one_by_one() -> None:
    bank = Bank(by_aum(grace=2, protection=0))
    bank.balance("c1", "2026-11-01", "60000")
    bank.eod("2026-11-01")
    bank.balance("c1", "2026-11-02", "10")
    # one eod closing 11-02..11-04: below days #0, #1, #2 -> warned on 11-02, moved on 11-04
    out = bank.eod("2026-11-04")
    assert [(o["type"], o["causation_id"]) for o in out] == [
        ("rm_alert", "eod:2026-11-02"),
        ("tier_change", "eod:2026-11-04"),
    ]


def test_as_of_day_is_the_later_of_latest_event_and_day_after_close() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "100")
    bank.eod("2026-11-03")
    # 11-02 is accepted (not late); X = max(11-02, 11-04) = 11-04
    [alert] = of_type(bank.balance("c1", "2026-11-02", "46000"), "rm_alert")
    assert alert["alert"] == "upgrade_candidate"
    view = bank.engine  # the snapshot in the Redis view is as of X
    from scoring.projection import customer_view

    assert customer_view(bank.state("c1"), view.clock, view.rules)["as_of"] == "2026-11-04"


def test_late_events_are_dead_letters() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "100")
    bank.eod("2026-11-10")
    # allowed_lateness_days = 7: day <= 11-10 - 7 = 11-03 is late; 11-04 is accepted
    [late] = bank.balance("c1", "2026-11-03", "5", event_id="old")
    assert (late["type"], late["reason"], late["customer_id"], late["causation_id"]) == (
        "dead_letter",
        "late",
        "c1",
        "old",
    )
    assert late["segment"] == "retail" and late["sequence"] is None
    assert of_type(bank.balance("c1", "2026-11-04", "46000"), "rm_alert")  # accepted, evaluated
    [profile] = bank.profile("c1", "2026-11-02")  # profiles too
    assert profile["reason"] == "late"


def test_events_too_far_ahead_of_the_clock_are_future_dead_letters() -> None:
    bank = Bank()
    bank.balance("c0", "2030-01-01", "100")  # nothing is future before the first close
    assert bank.engine.counters.dead_letters == {}
    bank.balance("c1", "2026-11-01", "100")
    bank.eod("2026-11-10")
    # allowed_future_days = 31: day(ts) > 11-10 + 1 + 31 = 12-12 is future; 12-12 is accepted
    [future] = bank.balance("c1", "2026-12-13", "5", event_id="ahead")
    assert (future["type"], future["reason"], future["causation_id"]) == ("dead_letter", "future", "ahead")
    assert "allowed_future_days (31)" in future["error"] and future["segment"] == "retail"
    assert not of_type(bank.balance("c1", "2026-12-12", "7"), "dead_letter")
    assert bank.engine.counters.dead_letters == {"future": 1} and bank.engine.counters.accepted == 4
    [profile] = bank.profile("c1", "2062-11-02")  # profiles too
    assert profile["reason"] == "future"


def test_an_eod_that_would_skip_too_many_days_is_a_future_dead_letter() -> None:
    bank = Bank(rules_with(allowed_future_days=5))
    bank.balance("c1", "2026-11-01", "100")
    bank.eod("2026-11-01")
    [future] = bank.eod("2062-11-07")  # a mistyped year: nothing is closed
    assert (future["reason"], future["causation_id"]) == ("future", "eod-2062-11-07")
    assert bank.engine.clock.closed == parse_day("2026-11-01") and bank.engine.counters.days_closed == 1
    [future] = bank.eod("2026-11-07")  # six days after the closed day: one too many
    assert future["reason"] == "future" and bank.engine.clock.closed == parse_day("2026-11-01")
    bank.eod("2026-11-06")  # five: closes 11-02 to 11-06
    assert bank.engine.clock.closed == parse_day("2026-11-06") and bank.engine.counters.dead_letters == {"future": 2}


def test_late_correction_changes_history_but_not_judged_days() -> None:
    bank = Bank(by_aum(grace=5, protection=0))
    bank.balance("c1", "2026-11-01", "60000")
    bank.eod("2026-11-01")
    bank.balance("c1", "2026-11-02", "10")
    bank.eod("2026-11-02")  # below #0
    assert bank.state("c1").watch == 0
    # a late correction for 11-02 raises the balance back: history changes, the judged day
    # stays judged (the watch is not undone), the next day is judged on the new history
    bank.balance("c1", "2026-11-02", "60000", time="18:00:00")
    assert bank.state("c1").watch == 0
    assert bank.eod("2026-11-03") == [] and bank.state("c1").watch is None


def test_duplicates_are_ignored_whatever_their_content() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "100", event_id="x1")
    before = bank.state("c1").to_bytes()
    assert bank.balance("c1", "2026-11-02", "999999", event_id="x1") == []
    assert bank.txn("c1", "2026-11-01", "5", event_id="x1") == []  # unique across topics
    assert bank.state("c1").to_bytes() == before
    assert bank.engine.counters.duplicates == 2
    # ids are per customer: another customer may reuse it
    assert of_type(bank.balance("c2", "2026-11-01", "100", event_id="x1"), "tier_change")


def test_duplicate_memory_forgets_ids_past_the_allowance() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "100", event_id="x1")
    bank.eod("2026-11-01")
    bank.eod("2026-11-09")  # 11-01 <= 11-09 - 7: its ids can no longer repeat without being late
    assert "x1" not in bank.state("c1").seen
    [again] = bank.balance("c1", "2026-11-01", "100", event_id="x1")
    assert again["reason"] == "late"


def test_dead_letter_envelope() -> None:
    bank = Bank()
    [d] = bank.send(topics.BALANCES, b"{oops", key=b"c9")
    assert d["event_id"] == "dead-letter:balances:0:0"
    assert (d["type"], d["reason"], d["customer_id"], d["key"], d["raw"]) == (
        "dead_letter",
        "invalid_json",
        None,
        "c9",
        "{oops",
    )
    assert d["sequence"] is None and d["segment"] is None and d["ts"] is None and d["causation_id"] is None
    bank.balance("c1", "2026-11-01", "100")
    [d2] = bank.send(topics.BALANCES, {"event_id": "z", "customer_id": "c1", "ts": "2026-11-01T00:00:00Z"})
    assert (d2["reason"], d2["customer_id"], d2["segment"], d2["causation_id"], d2["ts"]) == (
        "schema",
        "c1",
        "retail",
        "z",
        "2026-11-01T00:00:00Z",
    )
    assert "account_id" in d2["error"]  # the first missing field is named
    [d3] = bank.send(topics.BALANCES, b"\xff\xfe")
    assert d3["raw"] == "\ufffd\ufffd"


def test_dead_letters_do_not_take_sequence_numbers() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "100")
    bank.send(topics.BALANCES, {"customer_id": "c1"})
    [change] = bank.balance("c1", "2026-11-02", "60000")
    assert change["sequence"] == 2 and change["event_id"] == "c1:2"


def test_close_outputs_start_the_next_day_in_the_rules_timezone() -> None:
    bank = Bank(by_aum(grace=1, protection=0, timezone="Asia/Shanghai"))
    bank.balance("c1", "2026-11-01", "60000", time="12:00:00")  # 20:00 in Shanghai, 11-01
    bank.eod("2026-11-01")
    bank.balance("c1", "2026-11-02", "1")
    [alert] = bank.eod("2026-11-02")
    assert alert["ts"] == "2026-11-03T00:00:00+08:00"


def test_timezone_decides_the_business_day() -> None:
    bank = Bank(rules_with(timezone="Asia/Shanghai"))
    bank.balance("c1", "2026-11-01", "100", time="17:00:00")  # 01:00 on 11-02 in Shanghai
    bank.eod("2026-11-01")
    from scoring.projection import customer_view

    assert customer_view(bank.state("c1"), bank.engine.clock, bank.engine.rules)["as_of"] == "2026-11-02"


def test_customers_that_did_not_exist_yet_are_not_evaluated_at_a_close() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-05", "60000")
    bank.eod("2026-11-01")
    st = bank.state("c1")
    assert st.sequence == 1  # only the initial placement; the close of 11-01 left it alone


def test_a_day_counts_as_closed_once_its_close_is_done() -> None:
    # /counters days_closed tells operators (and the benchmarks) a close has ended
    core = Processor(load_rules())
    closes = core.closes(Clock(parse_day("2026-11-01")), parse_day("2026-11-03"))
    next(closes)
    assert core.counters.days_closed == 0  # the caller is still closing 2026-11-02
    next(closes)
    assert core.counters.days_closed == 1
    assert list(closes) == [] and core.counters.days_closed == 2
