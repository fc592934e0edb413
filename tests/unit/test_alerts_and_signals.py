"""RM alerts and risk signals (contract §6), worked out by hand."""

from __future__ import annotations

from tests.bank import Bank, days, of_type, rules_with


def alerts(outputs: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return of_type(outputs, "rm_alert", name)


def signals(outputs: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return of_type(outputs, "risk_signal", name)


# --- upgrade_candidate ----------------------------------------------------------------


def test_upgrade_candidate_fires_at_the_margin_once() -> None:
    bank = Bank()
    bank.profile("c1", "2026-11-01", rm_id="rm7")
    # gold min 50,000 x (1 - 0.10) = 45,000: 44,999.99 is not a candidate, 45,000.00 is
    assert alerts(bank.balance("c1", "2026-11-01", "44999.99"), "upgrade_candidate") == []
    [a] = alerts(bank.balance("c1", "2026-11-01", "45000.00", time="13:00:00"), "upgrade_candidate")
    assert (a["tier"], a["target_tier"], a["rm_id"], a["metric"]) == ("mass", "gold", "rm7", "aum")
    assert a["metric_value"] == "45000.00" and a["gap"] == "5000.00"
    # still true: no second alert
    assert alerts(bank.balance("c1", "2026-11-01", "46000", time="14:00:00"), "upgrade_candidate") == []
    # false re-arms; true again fires again
    bank.balance("c1", "2026-11-01", "10000", time="15:00:00")
    assert len(alerts(bank.balance("c1", "2026-11-01", "45500", time="16:00:00"), "upgrade_candidate")) == 1


def test_upgrade_candidate_follows_the_tier_change() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "1000")
    # 460,000: upgrade mass -> gold, then candidate for gold -> platinum (460,000 >= 450,000)
    out = bank.balance("c1", "2026-11-02", "460000")
    assert [o["type"] for o in out] == ["tier_change", "rm_alert"]
    assert (out[1]["tier"], out[1]["target_tier"], out[1]["gap"]) == ("gold", "platinum", "40000.00")


def test_no_candidate_on_the_top_tier() -> None:
    bank = Bank()
    out = bank.balance("c1", "2026-11-01", "9000000")  # private: no next tier
    assert alerts(out, "upgrade_candidate") == []


# --- large_outflow --------------------------------------------------------------------


def test_large_outflow_fires_above_half_the_monthly_average() -> None:
    bank = Bank()
    # 6,000,000 on 11-01 only: aum_avg_30d = 6,000,000/30 = 200,000; ratio x avg = 100,000
    bank.balance("c1", "2026-11-01", "6000000")
    assert signals(bank.txn("c1", "2026-11-01", "100000.00"), "large_outflow") == []  # not > 100,000
    # debits_7d = 100,000.01 > 100,000 and >= min 100,000 -> fires
    [s] = signals(bank.txn("c1", "2026-11-01", "0.01"), "large_outflow")
    assert s["severity"] == "high" and s["debits_7d"] == "100000.01" and s["aum_avg_30d"] == "200000.00"
    assert signals(bank.txn("c1", "2026-11-01", "5000"), "large_outflow") == []  # edge-triggered


def test_large_outflow_needs_the_minimum_amount() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "30")  # tiny average: the ratio alone is met
    assert signals(bank.txn("c1", "2026-11-01", "99999.99"), "large_outflow") == []
    assert len(signals(bank.txn("c1", "2026-11-01", "0.01"), "large_outflow")) == 1


def test_large_outflow_rearms_when_the_window_rolls_past() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "30")
    assert signals(bank.txn("c1", "2026-11-01", "150000"), "large_outflow")
    out: list[dict[str, object]] = []
    for d in days("2026-11-01", 8):  # by X = 11-08 the debit of 11-01 left the 7-day window
        out += bank.eod(d)
    assert signals(out, "large_outflow") == []
    assert signals(bank.txn("c1", "2026-11-09", "150000"), "large_outflow")


# --- deposit_diversion ----------------------------------------------------------------


def test_deposit_diversion_counts_only_transfers_to_other_banks() -> None:
    bank = Bank()
    # 1,800,000 on 11-01 only: aum_avg_90d = 20,000; 0.3 x 20,000 = 6,000; min 200,000
    bank.balance("c1", "2026-11-01", "1800000")
    assert (
        signals(
            bank.txn("c1", "2026-11-01", "300000", kind="transfer_out", counterparty_bank="BANKA"), "deposit_diversion"
        )
        == []
    )
    assert signals(bank.txn("c1", "2026-11-01", "300000", kind="transfer_out"), "deposit_diversion") == []
    assert (
        signals(
            bank.txn("c1", "2026-11-01", "300000", kind="card_spend", counterparty_bank="BANKB"), "deposit_diversion"
        )
        == []
    )
    out = bank.txn("c1", "2026-11-01", "199999.99", kind="transfer_out", counterparty_bank="BANKB")
    assert signals(out, "deposit_diversion") == []  # below the minimum amount
    [s] = signals(
        bank.txn("c1", "2026-11-01", "0.01", kind="transfer_out", counterparty_bank="BANKC"), "deposit_diversion"
    )
    assert s["external_outflow_30d"] == "200000.00" and s["aum_avg_90d"] == "20000.00"
    assert s["severity"] == "high"


# --- balance_drop ---------------------------------------------------------------------


def test_balance_drop_against_the_90_day_average() -> None:
    bank = Bank()
    bank.balance("c1", "2026-09-01", "1000000")
    # As of 2026-10-30 the 90-day window is 2026-08-02..10-30: 1,000,000 on 09-01..10-29
    # (30 + 29 = 59 days) and a on 10-30. Fires iff a < 0.5 x (59,000,000 + a)/90
    # <=> 179a < 59,000,000 <=> a <= 329,608.93 (179 x 329,608.94 = 59,000,000.26).
    out = bank.balance("c1", "2026-10-30", "329608.94")
    assert signals(out, "balance_drop") == []
    [s] = signals(bank.balance("c1", "2026-10-30", "329608.93", time="13:00:00"), "balance_drop")
    assert s["severity"] == "medium" and s["aum"] == "329608.93"
    assert s["aum_avg_90d"] == "659217.88"  # 59,329,608.93/90 = 659,217.877...


def test_balance_drop_needs_a_meaningful_average() -> None:
    bank = Bank()
    bank.balance("c1", "2026-09-01", "100000")
    # avg90 as of 2026-10-30 < 100,000 (days before 09-01 count 0): no signal even at zero
    assert signals(bank.balance("c1", "2026-10-30", "0"), "balance_drop") == []


# --- dormancy -------------------------------------------------------------------------


def test_dormancy_after_ninety_days_without_customer_activity() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "60000")  # gold (rank 1 >= min_tier_rank 1)
    bank.txn("c1", "2026-11-01", "12.00", kind="fee")  # fees and interest are not activity
    bank.eod("2026-11-01")
    # days_since_activity = X - 2026-11-01 (first event day); X = D + 1 (eods at most
    # allowed_future_days = 31 apart)
    assert signals(bank.eod("2026-12-01") + bank.eod("2026-12-31"), "dormancy") == []
    assert signals(bank.eod("2027-01-28"), "dormancy") == []  # X = 2027-01-29: 89 days
    [s] = signals(bank.eod("2027-01-29"), "dormancy")  # X = 2027-01-30: 90 days
    assert s["days_since_activity"] == 90 and s["severity"] == "low"
    assert signals(bank.eod("2027-01-30"), "dormancy") == []  # edge-triggered


def test_dormancy_ignores_the_lowest_tier_and_active_customers() -> None:
    bank = Bank()
    bank.balance("mass1", "2026-11-01", "100")  # rank 0
    bank.balance("busy", "2026-11-01", "60000")
    bank.txn("busy", "2026-11-01", "10")
    bank.eod("2026-11-01")
    out = bank.eod("2026-12-31")
    bank.txn("busy", "2026-12-31", "10", kind="withdrawal")  # activity resets the count
    out += bank.eod("2027-02-15")
    assert signals(out, "dormancy") == []


# --- anomalous_transaction ------------------------------------------------------------


def _history(bank: Bank) -> None:
    """Ten payments of 100 and ten of 200: mean 150, population sigma 50."""
    for i in range(10):
        bank.txn("c1", "2026-11-01", "100", time=f"10:{i:02d}:00")
        bank.txn("c1", "2026-11-01", "200", time=f"11:{i:02d}:00")


def test_anomalous_transaction_at_four_sigma() -> None:
    bank = Bank()
    _history(bank)
    # z = (349.99 - 150)/50 = 3.9998 < 4: nothing
    assert signals(bank.txn("c1", "2026-11-02", "349.99"), "anomalous_transaction") == []


def test_anomalous_transaction_threshold_is_inclusive() -> None:
    bank = Bank()
    _history(bank)
    [s] = signals(bank.txn("c1", "2026-11-02", "350.00", event_id="big"), "anomalous_transaction")
    # z = (350 - 150)/50 = 4 exactly >= 4
    assert (s["amount"], s["mean"], s["std"], s["z"]) == ("350.00", "150.00", "50.00", "4.0000")
    assert s["history_count"] == 20 and s["transaction_event_id"] == "big" and s["causation_id"] == "big"


def test_anomalous_transaction_needs_history_and_spread() -> None:
    bank = Bank()
    for i in range(19):
        bank.txn("c1", "2026-11-01", "100" if i % 2 else "200", time=f"10:{i:02d}:00")
    assert signals(bank.txn("c1", "2026-11-02", "100000"), "anomalous_transaction") == []  # 19 < 20
    flat = Bank()
    for i in range(25):
        flat.txn("c2", "2026-11-01", "100", time=f"10:{i:02d}:00")
    assert signals(flat.txn("c2", "2026-11-02", "100000"), "anomalous_transaction") == []  # sigma = 0


def test_anomalies_are_not_edge_triggered() -> None:
    bank = Bank()
    _history(bank)
    assert signals(bank.txn("c1", "2026-11-02", "5000"), "anomalous_transaction")
    assert signals(bank.txn("c1", "2026-11-02", "9000"), "anomalous_transaction")


def test_outputs_of_one_evaluation_come_in_the_specified_order() -> None:
    bank = Bank(rules_with(**{"risk.anomalous_transaction.min_history": 1}))
    bank.balance("c1", "2026-11-01", "60")
    bank.txn("c1", "2026-11-01", "1.00")
    bank.txn("c1", "2026-11-01", "3.00", time="12:30:00")
    # a big debit: large_outflow (high) then the anomaly, after any tier/alert outputs
    out = bank.txn("c1", "2026-11-01", "200000", time="13:00:00")
    assert [o.get("signal") for o in out] == ["large_outflow", "anomalous_transaction"]
    seqs = [o["sequence"] for o in bank.outputs if o["type"] != "dead_letter"]
    assert seqs == list(range(1, len(seqs) + 1))
