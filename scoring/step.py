"""The two steps of the core: apply an input event, close a business day (SPEC section 6).

Each step is ``(state, input) -> Step(state, outputs)``: *evolve* the state with the
input, then *decide* the tier, RM alerts and risk signals as of the customer's as-of day.
A step takes ownership of the state it is given and returns it updated (copying a state
per event would cost more than the decision itself); callers that need the old state
keep their own copy (``CustomerState.from_bytes(state.to_bytes())``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from functools import lru_cache
from typing import Any

import orjson

from schemas.events import LATE, Balance, CustomerEvent, Profile, Transaction
from schemas.topics import RISK_SIGNALS, RM_ALERTS, TIER_CHANGES
from scoring.days import Day, Zone, format_day
from scoring.metrics import MetricView, publish
from scoring.money import Number, format_amount
from scoring.outputs import Cause, Output, Source, dead_letter, envelope
from scoring.rules import MetricRef, Rules, Segment
from scoring.series import DEBITS, EXTERNAL
from scoring.state import SIGNAL_BITS, CustomerState

NOT_INITIATED = frozenset({"fee", "interest"})

ACCEPTED, DUPLICATE, DEAD = "accepted", "duplicate", "dead_letter"


@dataclass(frozen=True, slots=True)
class Clock:
    """The application's one clock: the latest closed business day (None before any)."""

    closed: Day | None = None

    def advance(self, business_date: Day) -> list[Day]:
        """Days an ``eod`` for ``business_date`` closes, ascending (none if already closed)."""
        if self.closed is None:
            return [business_date]  # the first eod ever closes only its own date
        return list(range(self.closed + 1, business_date + 1))

    def is_late(self, day: Day, rules: Rules) -> bool:
        return self.closed is not None and day <= self.closed - rules.allowed_lateness_days

    def as_of(self, st: CustomerState) -> Day:
        """The customer's as-of day X."""
        if self.closed is None or st.last_day > self.closed:
            return st.last_day
        return self.closed + 1


@dataclass(slots=True)
class Step:
    state: CustomerState | None
    outputs: list[Output]
    verdict: str  # ACCEPTED, DUPLICATE or DEAD (for the shell's counters)
    evaluated: bool  # the customer was evaluated: its Redis hash is refreshed


# --- evolve -------------------------------------------------------------------------


def apply_event(state: CustomerState | None, event: CustomerEvent, source: Source, clock: Clock, rules: Rules) -> Step:
    """Apply one valid customer event (section 6 (a)): late -> dead letter, duplicate ->
    ignored, otherwise evolve the state and evaluate as of the as-of day."""
    if clock.is_late(event.day, rules):
        closed = format_day(clock.closed) if clock.closed is not None else ""
        error = f"event day {format_day(event.day)} is past the lateness allowance of closed day {closed}"
        value = {"customer_id": event.customer_id, "event_id": event.event_id, "ts": event.ts}
        segment = state.segment if state is not None else None
        return Step(state, [dead_letter(source, LATE, error, value, segment, rules)], DEAD, False)
    if state is not None and event.event_id in state.seen:
        return Step(state, [], DUPLICATE, False)

    st = state or CustomerState(event.customer_id, rules.default_segment, event.day, event.day)
    st.seen[event.event_id] = event.day
    if event.day < st.first_day:
        st.first_day = event.day
    if event.day > st.last_day:
        st.last_day = event.day

    segment_changed = override_changed = False
    anomaly: dict[str, Any] | None = None
    if type(event) is Transaction:
        anomaly = _anomaly(st, event, rules)
        st.txn_n += 1
        st.txn_sum += event.amount
        st.txn_sumsq += event.amount * event.amount
        external = (
            event.kind == "transfer_out" and bool(event.counterparty_bank) and event.counterparty_bank != rules.own_bank
        )
        st.add_flow(
            event.day,
            event.amount if event.debit else 0,
            0 if event.debit else event.amount,
            event.amount if event.debit and event.kind == "fee" else 0,
            event.amount if external else 0,
            event.kind not in NOT_INITIATED,
        )
    elif type(event) is Balance:
        st.apply_snapshot(event.account_id, event.day, event.at, event.balance, event.liability)
    elif type(event) is Profile and (st.profile_at is None or event.at >= st.profile_at):
        segment_changed = event.segment != st.segment
        override_changed = event.tier_override != st.override
        st.segment, st.rm_id, st.override = event.segment, event.rm_id, event.tier_override
        st.profile_at = event.at

    x = clock.as_of(st)
    ev = _Evaluation(st, rules, MetricView(st, rules, x), Cause(event.ts, event.event_id))
    ev.tier_on_event(segment_changed, override_changed)
    ev.upgrade_candidate()
    ev.flow_signals()
    if anomaly is not None:
        ev.outputs.append(Output(RISK_SIGNALS, st.customer_id, _signal(ev, "anomalous_transaction", "medium", anomaly)))
    return Step(st, ev.outputs, ACCEPTED, bool(ev.outputs))


def close_day(state: CustomerState, day: Day, clock: Clock, rules: Rules) -> Step:
    """Evaluate one customer at the close of ``day`` (section 6 (b)); ``clock`` has
    already advanced to ``day``. Customers that did not exist yet are left alone."""
    st = state
    if st.first_day > day:
        return Step(st, [], ACCEPTED, False)
    x = clock.as_of(st)
    cause = _close_cause(rules.zone, day)
    ev = _Evaluation(st, rules, MetricView(st, rules, x), cause)
    watch_started = ev.tier_at_close(day)
    ev.upgrade_candidate()
    if watch_started is not None:
        ev.outputs.append(Output(RM_ALERTS, st.customer_id, watch_started))
    ev.flow_signals()
    ev.dormancy()
    st.prune(keep_from=day + 2 - rules.horizon, mutable_from=day - rules.allowed_lateness_days + 1)
    return Step(st, ev.outputs, ACCEPTED, True)


@lru_cache(maxsize=64)
def _close_cause(zone: Zone, day: Day) -> Cause:
    """Outputs of closing ``day`` are caused by ``eod:day`` at the start of the next day."""
    return Cause(zone.start_of(day + 1), f"eod:{format_day(day)}")


def customer_view(st: CustomerState, clock: Clock, rules: Rules) -> dict[str, str]:
    """The fields of the customer's Redis hash, but ``updated_at`` (the shell's clock)."""
    x = clock.as_of(st)
    view = MetricView(st, rules, x)
    ref = rules.segments[st.segment].upgrade_metric
    return {
        "tier": st.tier or "",
        "segment": st.segment,
        "since": format_day(st.since),
        "sequence": str(st.sequence),
        "rules_version": rules.version,
        "metric": ref.name,
        "metric_value": str(publish(ref, view.value(ref))),
        "as_of": format_day(x),
        "metrics": orjson.dumps(view.snapshot()).decode(),
    }


# --- decide -------------------------------------------------------------------------


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

    # tier ----------------------------------------------------------------------------

    def tier_on_event(self, segment_changed: bool, override_changed: bool) -> None:
        st, seg = self.st, self.seg
        placed = seg.place_up(self.up_value)
        if st.tier is None:
            self._change("initial", st.override or seg.tiers[placed].name)
        elif segment_changed:
            self._change("segment_change", st.override or seg.tiers[placed].name)
        elif override_changed:
            target = st.override or seg.tiers[placed].name
            if target != st.tier:
                self._change("override", target)
        elif st.override is None and placed > seg.rank.get(st.tier, -1):
            self._change("upgrade", seg.tiers[placed].name)
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
            self._change("upgrade", seg.tiers[placed].name)
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
                "downgrade",
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
        direction: str,
        tier: str,
        ref: MetricRef | None = None,
        value: Number | None = None,
        threshold: str | int | None = None,
        reason: str | None = None,
    ) -> None:
        st, seg = self.st, self.seg
        previous = st.tier
        pinned = st.override is not None and direction != "downgrade"
        if ref is None:
            ref, value = seg.upgrade_metric, self.up_value
            rank = seg.rank[tier]
            threshold = None if pinned else publish(ref, seg.tiers[rank].up_min)
            reason = _reason(direction, previous, tier, ref, publish(ref, value), threshold, pinned)
        st.tier = tier
        st.since = self.view.day
        st.watch = None
        v = envelope(st, self.rules, "tier_change", self.cause)
        v["previous_tier"] = previous
        v["tier"] = tier
        v["direction"] = direction
        v["metric"] = ref.name
        v["metric_value"] = publish(ref, value if value is not None else 0)
        v["threshold"] = threshold
        v["reason"] = reason
        v["metrics"] = self.view.snapshot()
        self.outputs.append(Output(TIER_CHANGES, st.customer_id, v))

    # alerts --------------------------------------------------------------------------

    def _alert(self, alert: str, target: str, ref: MetricRef, value: Number) -> dict[str, Any]:
        v = envelope(self.st, self.rules, "rm_alert", self.cause)
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
    v = envelope(ev.st, ev.rules, "risk_signal", ev.cause)
    v["signal"] = name
    v["severity"] = severity
    v.update(fields)
    return v


def _anomaly(st: CustomerState, event: Transaction, rules: Rules) -> dict[str, Any] | None:
    """z of the amount against all earlier accepted transactions (population sigma),
    decided exactly: z >= t  <=>  n*x - S >= t * sqrt(n*Q - S^2), squared with signs."""
    n, s, q = st.txn_n, st.txn_sum, st.txn_sumsq
    if n == 0 or n < rules.risk.anomaly_min_history:
        return None
    spread = n * q - s * s  # n^2 * variance
    if spread <= 0:
        return None
    lead = n * event.amount - s  # n * (x - mean)
    t = rules.risk.anomaly_z
    lhs = lead * lead * t.denominator * t.denominator
    rhs = t.numerator * t.numerator * spread
    if lead >= 0 and t <= 0:
        fires = True
    elif lead < 0 and t > 0:
        fires = False
    elif lead >= 0:
        fires = lhs >= rhs
    else:
        fires = lhs <= rhs
    if not fires:
        return None
    with localcontext() as ctx:
        ctx.prec = 50
        root = Decimal(spread).sqrt()
        z = (Decimal(lead) / root).quantize(Decimal("0.0001"))
        std = Fraction(root / n)
    return {
        "amount": format_amount(event.amount),
        "mean": format_amount(Fraction(s, n)),
        "std": format_amount(std),
        "z": str(z),
        "history_count": n,
        "transaction_event_id": event.event_id,
    }


def _reason(
    direction: str,
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
    if direction == "initial":
        return f"initial placement: {how}"
    if direction == "segment_change":
        return f"segment changed; {how}"
    if direction == "override":
        return f"{how} (was {previous})" if pinned else f"tier_override cleared; {how} (was {previous})"
    return f"{how}; upgraded from {previous}"
