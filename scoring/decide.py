"""Decide: the tier, RM alerts and risk signals of a customer as of its as-of day — after
an input event (``decide_on_event``) or at the close of a day (``decide_at_close``).

Outputs are returned, in the order they are published; the decisions also update the
state's decision fields (tier, since, watch, candidate, signals, sequence).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from schemas.topics import RISK_SIGNALS, RM_ALERTS, TIER_CHANGES, Topic
from schemas.vocabulary import Direction
from scoring.clock import Clock
from scoring.days import Day, Zone, format_day
from scoring.evolve import Evolved
from scoring.metrics import MetricView, publish
from scoring.money import Number, format_amount
from scoring.outputs import Cause, Output, envelope
from scoring.rules import MetricRef, Rules, Segment
from scoring.series import DEBITS, EXTERNAL
from scoring.state import SIGNAL_BITS, CustomerState


def decide_on_event(ev: Evolved, clock: Clock, cause: Cause, rules: Rules) -> list[Output]:
    """After an input event: placement or upgrade, upgrade candidacy, flow signals and
    the anomaly the event itself may be."""
    st = ev.state
    e = _Evaluation(st, rules, MetricView(st, rules, clock.as_of(st)), cause)
    e.tier_on_event(ev.segment_changed, ev.override_changed)
    e.upgrade_candidate()
    e.flow_signals()
    if ev.anomaly is not None:
        e.outputs.append(
            Output(RISK_SIGNALS, st.customer_id, _signal(e, "anomalous_transaction", "medium", ev.anomaly))
        )
    return e.outputs


def decide_at_close(st: CustomerState, day: Day, clock: Clock, rules: Rules) -> list[Output]:
    """At the close of ``day`` (``clock`` has advanced to it): upgrade or judge the day for
    a downgrade, upgrade candidacy, flow signals and dormancy."""
    e = _Evaluation(st, rules, MetricView(st, rules, clock.as_of(st)), _close_cause(rules.zone, day))
    watch_started = e.tier_at_close(day)
    e.upgrade_candidate()
    if watch_started is not None:
        e.outputs.append(Output(RM_ALERTS, st.customer_id, watch_started))
    e.flow_signals()
    e.dormancy()
    return e.outputs


@lru_cache(maxsize=64)
def _close_cause(zone: Zone, day: Day) -> Cause:
    """Outputs of closing ``day`` are caused by ``eod:day`` at the start of the next day."""
    return Cause(zone.start_of(day + 1), f"eod:{format_day(day)}")


class _Evaluation:
    """One evaluation of one customer as of its as-of day; collects outputs in order."""

    __slots__ = ("cause", "outputs", "rules", "seg", "st", "up_value", "view")

    def __init__(self, st: CustomerState, rules: Rules, view: MetricView, cause: Cause) -> None:
        self.st = st
        self.rules = rules
        self.view = view
        self.cause = cause
        self.seg: Segment = rules.segments[st.segment]
        self.up_value: Number = view.value(self.seg.upgrade_metric)
        self.outputs: list[Output] = []

    def _new_output(self, topic: Topic) -> dict[str, Any]:
        """The envelope of the customer's next output. The one place where a customer's
        sequence advances: every tier change, alert and signal takes the next number."""
        self.st.sequence += 1
        return envelope(self.st, self.rules, topic, self.cause, self.st.sequence)

    # tier ----------------------------------------------------------------------------

    def tier_on_event(self, segment_changed: bool, override_changed: bool) -> None:
        st, seg = self.st, self.seg
        placed = seg.place_up(self.up_value)
        if st.tier is None:
            self._change(Direction.INITIAL, st.override or seg.tiers[placed].name)
        elif segment_changed:
            self._change(Direction.SEGMENT_CHANGE, st.override or seg.tiers[placed].name)
        elif override_changed:
            target = st.override or seg.tiers[placed].name
            if target != st.tier:
                self._change(Direction.OVERRIDE, target)
        elif st.override is None and placed > seg.rank.get(st.tier, -1):
            self._change(Direction.UPGRADE, seg.tiers[placed].name)
        if st.override is not None:
            st.watch = None

    def tier_at_close(self, day: Day) -> dict[str, Any] | None:
        """Upgrade, or judge ``day`` for a downgrade; returns a downgrade_risk alert
        value when a watch starts (sent after upgrade_candidate)."""
        st, seg = self.st, self.seg
        if st.override is not None:
            st.watch = None
            return None
        current = seg.rank.get(st.tier or "", -1)
        placed = seg.place_up(self.up_value)
        if placed > current:
            self._change(Direction.UPGRADE, seg.tiers[placed].name)
            return None
        ref = seg.downgrade_metric
        value = MetricView(st, self.rules, day).value(ref)
        keep = seg.tiers[current].keep_line
        target = max(seg.place_down(value), placed)
        below = value < keep and target < current and day >= st.since + seg.upgrade_protection_days
        if not below:
            st.watch = None
            return None
        number = 0 if st.watch is None else st.watch + 1
        grace = seg.downgrade_grace_days
        if number >= grace:
            previous = st.tier
            self._change(
                Direction.DOWNGRADE,
                seg.tiers[target].name,
                ref,
                value,
                publish(ref, keep),
                f"{ref.name} as of {format_day(day)} was {publish(ref, value)}, below the {previous} keep line "
                f"{publish(ref, keep)} for {number + 1} consecutive day(s); moved to {seg.tiers[target].name}",
            )
            return None
        st.watch = number
        if number > 0:
            return None
        alert = self._alert("downgrade_risk", seg.tiers[target].name, ref, value)
        alert["gap"] = publish(ref, keep - value)
        alert["grace_days_left"] = grace
        return alert

    def _change(
        self,
        direction: Direction,
        tier: str,
        ref: MetricRef | None = None,
        value: Number | None = None,
        threshold: str | int | None = None,
        reason: str | None = None,
    ) -> None:
        st, seg = self.st, self.seg
        previous = st.tier
        pinned = st.override is not None and direction is not Direction.DOWNGRADE
        if ref is None:
            ref, value = seg.upgrade_metric, self.up_value
            rank = seg.rank[tier]
            threshold = None if pinned else publish(ref, seg.tiers[rank].up_min)
            reason = _reason(direction, previous, tier, ref, publish(ref, value), threshold, pinned)
        st.tier = tier
        st.since = self.view.day
        st.watch = None
        v = self._new_output(TIER_CHANGES)
        v["previous_tier"] = previous
        v["tier"] = tier
        v["direction"] = direction.value
        v["metric"] = ref.name
        v["metric_value"] = publish(ref, value if value is not None else 0)
        v["threshold"] = threshold
        v["reason"] = reason
        v["metrics"] = self.view.snapshot()
        self.outputs.append(Output(TIER_CHANGES, st.customer_id, v))

    # alerts --------------------------------------------------------------------------

    def _alert(self, alert: str, target: str, ref: MetricRef, value: Number) -> dict[str, Any]:
        v = self._new_output(RM_ALERTS)
        v["alert"] = alert
        v["rm_id"] = self.st.rm_id
        v["tier"] = self.st.tier
        v["target_tier"] = target
        v["metric"] = ref.name
        v["metric_value"] = publish(ref, value)
        return v

    def upgrade_candidate(self) -> None:
        st, seg = self.st, self.seg
        current = seg.rank.get(st.tier or "", -1)
        if st.override is None and 0 <= current < len(seg.tiers) - 1:
            nxt = seg.tiers[current + 1]
            if self.up_value >= nxt.candidate_line:
                pair = f"{st.tier}>{nxt.name}"
                if st.candidate != pair:
                    st.candidate = pair
                    ref = seg.upgrade_metric
                    v = self._alert("upgrade_candidate", nxt.name, ref, self.up_value)
                    v["gap"] = publish(ref, nxt.up_min - self.up_value)
                    self.outputs.append(Output(RM_ALERTS, st.customer_id, v))
                return
        st.candidate = None

    # signals -------------------------------------------------------------------------

    def _edge(self, name: str, severity: str, condition: bool, fields: Callable[[], dict[str, Any]]) -> None:
        """Edge trigger: send when the condition turns true, re-arm when it turns false.
        ``fields`` is called only when the signal is sent."""
        bit = SIGNAL_BITS[name]
        if not condition:
            self.st.signals &= ~bit
        elif not self.st.signals & bit:
            self.st.signals |= bit
            self.outputs.append(Output(RISK_SIGNALS, self.st.customer_id, _signal(self, name, severity, fields())))

    def flow_signals(self) -> None:
        view, risk = self.view, self.rules.risk
        flows, x = self.st.flows, view.day
        lo = risk.large_outflow
        debits = flows.field_total(x - lo.window_days + 1, x, DEBITS)
        # debits > ratio x sum30/30, in integers
        fires = debits >= lo.min_amount and debits * 30 * lo.ratio.denominator > lo.ratio.numerator * view.balance_sum(
            False, 30
        )
        self._edge(
            "large_outflow",
            "high",
            fires,
            lambda: {
                f"debits_{lo.window_days}d": format_amount(debits),
                "aum_avg_30d": format_amount(view.aum_avg(30)),
            },
        )
        dd = risk.deposit_diversion
        external = flows.field_total(x - dd.window_days + 1, x, EXTERNAL)
        fires = (
            external >= dd.min_amount
            and external * 90 * dd.ratio.denominator >= dd.ratio.numerator * view.balance_sum(False, 90)
        )
        self._edge(
            "deposit_diversion",
            "high",
            fires,
            lambda: {
                f"external_outflow_{dd.window_days}d": format_amount(external),
                "aum_avg_90d": format_amount(view.aum_avg(90)),
            },
        )
        sum90, aum = view.balance_sum(False, 90), view.aum()
        floor, ratio = risk.drop_min_avg, risk.drop_ratio
        # sum90/90 >= min_avg  and  aum < ratio x sum90/90, in integers
        fires = sum90 * floor.denominator >= floor.numerator * 90 and (
            aum * 90 * ratio.denominator < ratio.numerator * sum90
        )
        self._edge(
            "balance_drop",
            "medium",
            fires,
            lambda: {"aum": format_amount(aum), "aum_avg_90d": format_amount(view.aum_avg(90))},
        )

    def dormancy(self) -> None:
        risk, seg = self.rules.risk, self.seg
        days = self.view.days_since_activity()
        rank = seg.rank.get(self.st.tier or "", -1)
        fires = days >= risk.dormancy_days and rank >= risk.dormancy_min_rank
        self._edge("dormancy", "low", fires, lambda: {"days_since_activity": days, "tier": self.st.tier})


def _signal(ev: _Evaluation, name: str, severity: str, fields: dict[str, Any]) -> dict[str, Any]:
    v = ev._new_output(RISK_SIGNALS)
    v["signal"] = name
    v["severity"] = severity
    v.update(fields)
    return v


def _reason(
    direction: Direction,
    previous: str | None,
    tier: str,
    ref: MetricRef,
    value: str | int,
    threshold: str | int | None,
    pinned: bool,
) -> str:
    if pinned:
        how = f"tier_override pins the customer at {tier}"
    else:
        how = f"{ref.name} {value} meets the {tier} minimum {threshold}"
    if direction is Direction.INITIAL:
        return f"initial placement: {how}"
    if direction is Direction.SEGMENT_CHANGE:
        return f"segment changed; {how}"
    if direction is Direction.OVERRIDE:
        return f"{how} (was {previous})" if pinned else f"tier_override cleared; {how} (was {previous})"
    return f"{how}; upgraded from {previous}"
