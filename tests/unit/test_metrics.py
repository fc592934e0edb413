"""Metrics of contract §4, worked out by hand."""

from __future__ import annotations

from fractions import Fraction

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from scoring.money import format_amount, format_quotient
from scoring.projection import customer_view
from tests.bank import Bank


def metrics(bank: Bank, customer: str = "c1") -> dict[str, object]:
    view = customer_view(bank.state(customer), bank.engine.clock, bank.engine.rules)
    return dict(orjson.loads(view["metrics"]))


def test_daily_average_counts_every_calendar_day() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "3000")
    bank.balance("c1", "2026-11-03", "6000")
    m = metrics(bank)  # as of X = 11-03
    # 7 days 10-28..11-03: 0,0,0,0, 3000 (11-01), 3000 (11-02 carries 11-01), 6000 -> 12,000/7
    assert m["aum_avg_7d"] == "1714.29"
    assert m["aum_avg_30d"] == "400.00"  # 12,000/30
    assert m["aum_avg_90d"] == "133.33"  # 12,000/90
    assert m["aum"] == "6000.00"


def test_latest_snapshot_of_a_day_wins_by_timestamp_not_arrival() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "500", time="18:00:00")
    bank.balance("c1", "2026-11-01", "100", time="09:00:00")  # arrives later, but is older
    assert metrics(bank)["aum"] == "500.00"
    bank.balance("c1", "2026-11-01", "700", time="18:00:00")  # equal ts: the later arrival wins
    assert metrics(bank)["aum"] == "700.00"


def test_each_snapshot_is_classed_by_its_own_product() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "1000", account="x", product="savings")
    bank.balance("c1", "2026-11-02", "400", account="x", product="credit_card")
    m = metrics(bank)  # as of 11-02: the account now owes 400
    assert (m["aum"], m["loan_balance"]) == ("0.00", "400.00")
    assert m["aum_avg_7d"] == "142.86"  # 1,000 on 11-01 only: 1,000/7
    assert m["loan_avg_7d"] == "57.14"  # 400/7


def test_late_snapshot_changes_the_days_until_the_next_one() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "100")
    bank.balance("c1", "2026-11-05", "100")
    bank.balance("c1", "2026-11-03", "800")  # arrives last: decides 11-03 and 11-04 only
    # 7 days 10-30..11-05: 0,0,100,100,800,800,100 = 1,900
    assert metrics(bank)["aum_avg_7d"] == "271.43"


def test_amounts_in_foreign_currency_are_converted() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "1000.00", currency="USD")  # x 7.10
    bank.balance("c1", "2026-11-01", "0.50", account="a2", currency="HKD")  # 0.455 -> 0.46
    assert metrics(bank)["aum"] == "7100.46"


def test_flow_windows() -> None:
    bank = Bank()
    bank.txn("c1", "2026-10-01", "1000", kind="withdrawal")  # outside 30 days of 11-02, inside 90
    bank.txn("c1", "2026-11-01", "50", kind="fee")
    bank.txn("c1", "2026-11-01", "7", direction="credit", kind="fee")  # a fee refund: not income
    bank.txn("c1", "2026-11-02", "300", kind="transfer_out", counterparty_bank="BANKB")
    bank.txn("c1", "2026-11-02", "200", kind="transfer_out", counterparty_bank="BANKA")  # own bank
    bank.txn("c1", "2026-11-02", "20", kind="transfer_out", counterparty_bank="")  # empty: not external
    bank.txn("c1", "2026-11-02", "900", direction="credit", kind="deposit")
    m = metrics(bank)
    assert m["debits_7d"] == "570.00" and m["debits_90d"] == "1570.00"
    assert m["credits_7d"] == "907.00"
    assert m["fee_income_30d"] == "50.00"
    assert m["external_outflow_30d"] == "300.00"
    assert m["txn_count_7d"] == 6 and m["txn_count_90d"] == 7


def test_contribution_is_annualised_revenue() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "900000")
    bank.balance("c1", "2026-11-01", "900000", account="l1", product="loan")
    bank.txn("c1", "2026-11-01", "90", kind="fee")
    # 900,000/90 x 150bp = 150; 900,000/90 x 200bp = 200; 90 x 365/90 = 365 -> 715
    assert metrics(bank)["contribution_90d"] == "715.00"


def test_days_since_activity() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "10")
    bank.eod("2026-11-04")
    assert metrics(bank)["days_since_activity"] == 4  # X = 11-05, no activity: since 11-01
    bank.txn("c1", "2026-11-03", "5", kind="card_spend")
    bank.txn("c1", "2026-11-04", "1", direction="credit", kind="interest")  # not customer-initiated
    assert metrics(bank)["days_since_activity"] == 2  # 11-05 - 11-03


def test_rules_may_name_extra_windows() -> None:
    from tests.bank import rules_with

    bank = Bank(rules_with(**{"segments.retail.downgrade_metric": "aum_avg_60d"}))
    bank.balance("c1", "2026-11-01", "600")
    m = metrics(bank)
    assert m["aum_avg_60d"] == "10.00" and "txn_count_60d" in m


@given(
    st.one_of(st.integers(min_value=-1000, max_value=1000), st.integers(min_value=-(10**17), max_value=10**17)),
    st.integers(min_value=1, max_value=400),
)
@example(5, 2)  # a tie: half-even keeps 2
@example(-5, 2)
@example(7, 2)
def test_averages_are_formatted_as_their_exact_fraction_would_be(total: int, days: int) -> None:
    assert format_quotient(total, days) == format_amount(Fraction(total, days))
