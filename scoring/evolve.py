"""Evolve: what one valid customer event changes in the customer's state (metrics, the
profile in force, the transaction history), before any decision is taken."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from schemas.vocabulary import NOT_CUSTOMER_INITIATED
from scoring.events import Balance, CustomerEvent, Profile, Transaction
from scoring.money import format_amount
from scoring.rules import Rules
from scoring.state import CustomerState


@dataclass(slots=True)
class Evolved:
    """The state after an event, and what the decision needs to know about the change."""

    state: CustomerState
    segment_changed: bool = False
    override_changed: bool = False
    anomaly: dict[str, Any] | None = None  # fields of an anomalous_transaction signal


def evolve(state: CustomerState | None, event: CustomerEvent, rules: Rules) -> Evolved:
    """Apply a valid, new (not late, not duplicate) event to the customer's state, which
    it takes ownership of (a new customer's state is made here)."""
    st = state or CustomerState(event.customer_id, rules.default_segment, event.day, event.day)
    out = Evolved(st)
    st.seen[event.event_id] = event.day
    if event.day < st.first_day:
        st.first_day = event.day
    if event.day > st.last_day:
        st.last_day = event.day
    if type(event) is Transaction:
        out.anomaly = _anomaly(st, event, rules)  # against the history before this one
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
            event.kind not in NOT_CUSTOMER_INITIATED,
        )
    elif type(event) is Balance:
        st.apply_snapshot(event.account_id, event.day, event.at, event.balance, event.liability)
    elif type(event) is Profile and (st.profile_at is None or event.at >= st.profile_at):
        out.segment_changed = event.segment != st.segment
        out.override_changed = event.tier_override != st.override
        st.segment, st.rm_id, st.override = event.segment, event.rm_id, event.tier_override
        st.profile_at = event.at
    return out


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
