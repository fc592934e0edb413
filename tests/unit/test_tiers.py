"""Tier decisions (contract §6), each expectation worked out by hand in a comment."""

from __future__ import annotations

from scoring.rules import Rules
from tests.bank import Bank, by_aum, days, of_type, rules_with


def changes(outputs: list[dict[str, object]]) -> list[tuple[object, object, object]]:
    return [(o["direction"], o["previous_tier"], o["tier"]) for o in of_type(outputs, "tier_change")]


def test_first_event_places_the_customer_initially() -> None:
    bank = Bank()
    out = bank.balance("c1", "2026-11-01", "60000.00")
    # aum 60,000 >= gold 50,000 and < platinum 500,000 -> gold, previous null
    [change] = of_type(out, "tier_change")
    assert (change["direction"], change["previous_tier"], change["tier"]) == ("initial", None, "gold")
    assert change["metric"] == "aum" and change["metric_value"] == "60000.00" and change["threshold"] == "50000.00"
    assert change["segment"] == "retail"  # default_segment before any profile
    assert change["metrics"]["aum"] == "60000.00"  # type: ignore[index]
    assert "gold" in str(change["reason"]) and "50000.00" in str(change["reason"])


def test_gold_needs_exactly_fifty_thousand() -> None:
    bank = Bank()
    # 49,999.99 < 50,000.00 -> mass; then 50,000.00 >= 50,000.00 -> upgrade to gold
    assert changes(bank.balance("c1", "2026-11-01", "49999.99")) == [("initial", None, "mass")]
    assert changes(bank.balance("c1", "2026-11-01", "50000.00", time="13:00:00")) == [("upgrade", "mass", "gold")]


def test_upgrade_may_skip_levels() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "10000")
    # 3,000,000 >= diamond 2,000,000 and < private 6,000,000: mass -> diamond directly
    assert changes(bank.balance("c1", "2026-11-02", "3000000")) == [("upgrade", "mass", "diamond")]


def test_upgrade_counts_every_asset_account() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "30000", account="a1")
    # aum = 30,000 + 25,000 (fund) = 55,000 >= 50,000; the loan does not count
    bank.balance("c1", "2026-11-01", "900000", account="l1", product="loan")
    assert changes(bank.balance("c1", "2026-11-01", "25000", account="f1", product="fund")) == [
        ("upgrade", "mass", "gold")
    ]


def _gold_customer(rules: Rules | None = None) -> Bank:
    """c1 enters gold on 2026-11-01 (aum 60,000; E = 2026-11-01)."""
    bank = Bank(rules)
    bank.balance("c1", "2026-11-01", "60000")
    bank.eod("2026-11-01")
    return bank


def test_downgrade_waits_for_grace_days() -> None:
    # downgrade by aum, no protection, G = 2: below days 0, 1, 2 -> moved at the close of #2
    bank = _gold_customer(by_aum(grace=2, protection=0))
    bank.balance("c1", "2026-11-02", "44999.99")  # keep line = 50,000 x 0.9 = 45,000; 44,999.99 is below
    first = bank.eod("2026-11-02")  # below day #0: the watch starts
    assert changes(first) == []
    [risk] = of_type(first, "rm_alert", "downgrade_risk")
    # target = higher of place(44,999.99) = mass and place(aum) = mass; gap = 45,000 - 44,999.99
    assert risk["target_tier"] == "mass" and risk["metric_value"] == "44999.99"
    assert risk["gap"] == "0.01" and risk["grace_days_left"] == 2 and risk["rm_id"] is None
    assert risk["ts"] == "2026-11-03T00:00:00+00:00" and risk["causation_id"] == "eod:2026-11-02"
    assert bank.eod("2026-11-03") == []  # below day #1: nothing to say
    [down] = of_type(bank.eod("2026-11-04"), "tier_change")  # below day #2 = G: move
    assert (down["direction"], down["previous_tier"], down["tier"]) == ("downgrade", "gold", "mass")
    assert down["metric"] == "aum" and down["metric_value"] == "44999.99" and down["threshold"] == "45000.00"
    assert down["ts"] == "2026-11-05T00:00:00+00:00" and down["causation_id"] == "eod:2026-11-04"


def test_the_keep_line_itself_is_not_below() -> None:
    bank = _gold_customer(by_aum(grace=30, protection=0))
    bank.balance("c1", "2026-11-02", "45000.00")  # = keep line: not below
    assert bank.eod("2026-11-02") == []
    assert bank.state("c1").watch is None


def test_default_grace_moves_on_the_31st_consecutive_below_day() -> None:
    # default: down by aum_avg_30d, G = 30, protection 30 days from E = 2026-11-01
    bank = _gold_customer()
    bank.balance("c1", "2026-11-02", "1000")
    outputs: list[dict[str, object]] = []
    for d in days("2026-11-02", 70):
        outputs += bank.eod(d)
    # Below days need D >= E + 30 = 2026-12-01 (aum_avg_30d < 45,000 since mid-November).
    # #0 = 2026-12-01 (downgrade_risk), #30 = 2026-12-31: moved at that close.
    [risk] = of_type(outputs, "rm_alert", "downgrade_risk")
    assert risk["causation_id"] == "eod:2026-12-01" and risk["grace_days_left"] == 30
    [down] = of_type(outputs, "tier_change")
    assert down["causation_id"] == "eod:2026-12-31" and down["tier"] == "mass"
    assert down["metric"] == "aum_avg_30d" and down["metric_value"] == "1000.00"


def test_a_day_that_is_not_below_ends_the_watch() -> None:
    bank = _gold_customer(by_aum(grace=2, protection=0))
    bank.balance("c1", "2026-11-02", "40000")
    assert of_type(bank.eod("2026-11-02"), "rm_alert", "downgrade_risk")  # #0
    bank.eod("2026-11-03")  # #1
    bank.balance("c1", "2026-11-04", "46000")  # above the keep line: the watch ends
    assert bank.eod("2026-11-04") == []
    bank.balance("c1", "2026-11-05", "40000")
    # a new watch: #0 again, with its own downgrade_risk, and no downgrade yet
    out = bank.eod("2026-11-05")
    assert of_type(out, "rm_alert", "downgrade_risk") and not of_type(out, "tier_change")
    bank.eod("2026-11-06")
    assert changes(bank.eod("2026-11-07")) == [("downgrade", "gold", "mass")]


def test_zero_grace_moves_on_the_first_below_day_without_a_warning() -> None:
    bank = _gold_customer(by_aum(grace=0, protection=0))
    bank.balance("c1", "2026-11-02", "100")
    out = bank.eod("2026-11-02")
    assert changes(out) == [("downgrade", "gold", "mass")]
    assert not of_type(out, "rm_alert", "downgrade_risk")  # G = 0: no watch to warn about


def test_a_new_tier_is_protected() -> None:
    # protection 3 days, G = 0; E = 2026-11-01: below days need D >= 2026-11-04
    bank = _gold_customer(by_aum(grace=0, protection=3))
    bank.balance("c1", "2026-11-02", "100")
    assert bank.eod("2026-11-02") == []
    assert bank.eod("2026-11-03") == []
    assert changes(bank.eod("2026-11-04")) == [("downgrade", "gold", "mass")]


def test_downgrade_target_is_the_higher_of_the_average_and_the_current_place() -> None:
    # down by aum_avg_90d, G = 0, no protection. Day 1: 600,000 -> platinum.
    bank = Bank(
        rules_with(
            **{
                "segments.retail.downgrade_metric": "aum_avg_90d",
                "segments.retail.upgrade_protection_days": 0,
                "segments.retail.downgrade_grace_days": 0,
            }
        )
    )
    bank.balance("c1", "2026-11-01", "600000")
    # close of 11-01: avg90 = 600,000/90 = 6,666.67 (mass) but aum as of X = 11-02 is still
    # 600,000 (platinum): target = platinum, not below the current tier -> no change
    assert bank.eod("2026-11-01") == []
    bank.balance("c1", "2026-11-02", "60000")
    # close of 11-02: avg90 = 660,000/90 = 7,333.33 (mass); place(aum 60,000) = gold -> gold
    [down] = of_type(bank.eod("2026-11-02"), "tier_change")
    assert (down["previous_tier"], down["tier"]) == ("platinum", "gold")
    assert down["metric"] == "aum_avg_90d" and down["metric_value"] == "7333.33"
    assert down["threshold"] == "450000.00"  # platinum keep line: 500,000 x 0.9


def test_upgrade_at_a_close_as_the_average_grows() -> None:
    # up and down by aum_avg_7d, G = 0, no protection; 100,000 from 2026-11-01
    bank = Bank(
        rules_with(
            **{
                "segments.retail.upgrade_metric": "aum_avg_7d",
                "segments.retail.downgrade_metric": "aum_avg_7d",
                "segments.retail.upgrade_protection_days": 0,
                "segments.retail.downgrade_grace_days": 0,
            }
        )
    )
    assert changes(bank.balance("c1", "2026-11-01", "100000")) == [("initial", None, "mass")]  # 14,285.71
    assert bank.eod("2026-11-01") == []  # X = 11-02: 200,000/7 = 28,571.43
    assert bank.eod("2026-11-02") == []  # X = 11-03: 300,000/7 = 42,857.14 (< 45,000: no candidate)
    [up] = of_type(bank.eod("2026-11-03"), "tier_change")  # X = 11-04: 400,000/7 = 57,142.86
    assert (up["direction"], up["previous_tier"], up["tier"]) == ("upgrade", "mass", "gold")
    assert up["metric_value"] == "57142.86" and up["causation_id"] == "eod:2026-11-03"
    assert up["ts"] == "2026-11-04T00:00:00+00:00"


def test_override_pins_the_tier() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "1000")
    [pin] = of_type(bank.profile("c1", "2026-11-01", override="platinum"), "tier_change")
    assert (pin["direction"], pin["previous_tier"], pin["tier"], pin["threshold"]) == (
        "override",
        "mass",
        "platinum",
        None,
    )
    # pinned: no upgrade even above diamond, no upgrade_candidate
    out = bank.balance("c1", "2026-11-02", "3000000")
    assert not of_type(out, "tier_change") and not of_type(out, "rm_alert")
    # the same override again changes nothing
    assert not of_type(bank.profile("c1", "2026-11-02", override="platinum"), "tier_change")
    # clearing re-places at place(aum) = diamond at once
    [clear] = of_type(bank.profile("c1", "2026-11-03", override=None), "tier_change")
    assert (clear["direction"], clear["tier"], clear["threshold"]) == ("override", "diamond", "2000000.00")


def test_clearing_an_override_moves_down_at_once() -> None:
    bank = Bank()
    bank.profile("c1", "2026-11-01", override="private")
    bank.balance("c1", "2026-11-01", "1000")
    assert changes(bank.profile("c1", "2026-11-02", override=None)) == [("override", "private", "mass")]


def test_first_profile_with_override_is_an_initial_placement() -> None:
    bank = Bank()
    [first] = of_type(bank.profile("c1", "2026-11-01", override="gold"), "tier_change")
    assert (first["direction"], first["tier"], first["threshold"]) == ("initial", "gold", None)


def test_pinned_customer_is_never_watched() -> None:
    bank = _gold_customer(by_aum(grace=0, protection=0))
    bank.profile("c1", "2026-11-02", override="gold")
    bank.balance("c1", "2026-11-02", "1")
    assert bank.eod("2026-11-02") == [] and bank.state("c1").tier == "gold"


def test_segment_change_replaces_on_the_new_ladder() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "60000")  # retail gold (default segment)
    [move] = of_type(bank.profile("c1", "2026-11-01", segment="corporate"), "tier_change")
    # contribution_90d = 60,000/90 x 1.5% = 10.00 < key 100,000 -> basic
    assert (move["direction"], move["previous_tier"], move["tier"], move["segment"]) == (
        "segment_change",
        "gold",
        "basic",
        "corporate",
    )
    assert move["metric"] == "contribution_90d" and move["metric_value"] == "10.00"


def test_segment_change_is_emitted_even_with_the_same_place() -> None:
    bank = Bank()
    bank.profile("c1", "2026-11-01", segment="corporate")
    assert changes(bank.profile("c1", "2026-11-02", segment="retail")) == [("segment_change", "basic", "mass")]


def test_an_older_profile_changes_nothing() -> None:
    bank = Bank()
    bank.profile("c1", "2026-11-02", rm_id="rm2")
    out = bank.profile("c1", "2026-11-01", segment="corporate", rm_id="rm1")
    assert out == []
    st = bank.state("c1")
    assert (st.segment, st.rm_id) == ("retail", "rm2")


def test_equal_profile_timestamps_the_later_arrival_wins() -> None:
    bank = Bank()
    bank.profile("c1", "2026-11-02", rm_id="rm1")
    bank.profile("c1", "2026-11-02", rm_id="rm2")
    assert bank.state("c1").rm_id == "rm2"


def test_since_is_the_as_of_day_of_the_latest_change() -> None:
    bank = Bank()
    bank.balance("c1", "2026-11-01", "100")
    bank.eod("2026-11-05")  # the first eod closes only 2026-11-05; X becomes 2026-11-06
    bank.balance("c1", "2026-11-03", "60000")  # a late-ish event within the allowance
    st = bank.state("c1")
    assert st.tier == "gold" and st.since == days_ordinal("2026-11-06")


def days_ordinal(day: str) -> int:
    from datetime import date

    return date.fromisoformat(day).toordinal()
