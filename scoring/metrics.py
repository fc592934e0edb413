"""The metrics of contract §4, computed exactly as of one day from a customer's state.

Amounts are exact numbers of cents (``int``, or ``Fraction`` for averages); counts and
days are plain integers. Each metric is computed at most once per view.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

from scoring.days import Day
from scoring.money import Number, format_amount, format_cents, format_quotient
from scoring.rules import MetricRef, Rules
from scoring.series import COUNT, CREDITS, DEBITS, EXTERNAL, FEES
from scoring.state import CustomerState

_FLOW_FIELD = {
    "debits": DEBITS,
    "credits": CREDITS,
    "fee_income": FEES,
    "external_outflow": EXTERNAL,
    "txn_count": COUNT,
}


@lru_cache(maxsize=64)
def _window_keys(n: int) -> tuple[str, str, str, str, str, str, str]:
    """The snapshot's field names for window ``n``, in the order ``snapshot`` fills them."""
    return (
        f"aum_avg_{n}d",
        f"loan_avg_{n}d",
        f"debits_{n}d",
        f"credits_{n}d",
        f"fee_income_{n}d",
        f"external_outflow_{n}d",
        f"txn_count_{n}d",
    )


class MetricView:
    """A customer's metrics as of one day, computed lazily."""

    __slots__ = ("_flows", "_sums", "day", "rules", "state")

    def __init__(self, state: CustomerState, rules: Rules, day: Day) -> None:
        self.state = state
        self.rules = rules
        self.day = day
        self._flows: dict[int, list[int]] = {}
        self._sums: dict[tuple[bool, int], int] = {}

    def aum(self) -> int:
        return self.state.balances.at(self.day, False)

    def loan(self) -> int:
        return self.state.balances.at(self.day, True)

    def balance_sum(self, loan: bool, n: int) -> int:
        """Sum over the last n days of aum(d) (or loan(d)): n x the daily average."""
        total = self._sums.get((loan, n))
        if total is None:
            total = self._sums[loan, n] = self.state.balances.total(self.day - n + 1, self.day, loan)
        return total

    def aum_avg(self, n: int) -> Fraction:
        return Fraction(self.balance_sum(False, n), n)

    def flows(self, n: int) -> list[int]:
        """Per-field flow sums over the last n days (fields as in ``scoring.series``)."""
        sums = self._flows.get(n)
        if sums is None:
            sums = self._flows[n] = self.state.flows.total(self.day - n + 1, self.day)
        return sums

    def contribution_90d(self) -> Fraction:
        a, b, c, den = self.rules.contribution
        return Fraction(
            a * self.balance_sum(False, 90) + b * self.balance_sum(True, 90) + c * self.flows(90)[FEES], den
        )

    def days_since_activity(self) -> int:
        st, d = self.state, self.day
        latest = st.activity_day
        if latest is not None and latest > d:
            # activity after the as-of day (a view as of a closed day): find the one before
            latest = st.flows.latest_initiated(d) or st.activity_before
        if latest is None:
            return d - st.first_day
        return d - latest

    def value(self, ref: MetricRef) -> Number:
        kind = ref.kind
        if kind == "aum":
            return self.aum()
        if kind == "loan_balance":
            return self.loan()
        if kind == "aum_avg":
            return Fraction(self.balance_sum(False, ref.window), ref.window)
        if kind == "loan_avg":
            return Fraction(self.balance_sum(True, ref.window), ref.window)
        if kind == "contribution_90d":
            return self.contribution_90d()
        if kind == "days_since_activity":
            return self.days_since_activity()
        return self.flows(ref.window)[_FLOW_FIELD[kind]]

    def snapshot(self) -> dict[str, str | int]:
        """Every metric of section 4 for the rules' windows, as published."""
        out: dict[str, str | int] = {
            "aum": format_amount(self.aum()),
            "loan_balance": format_amount(self.loan()),
        }
        for n in self.rules.windows:
            f = self.flows(n)
            aum_avg, loan_avg, debits, credits, fees, external, count = _window_keys(n)
            out[aum_avg] = format_quotient(self.balance_sum(False, n), n)
            out[loan_avg] = format_quotient(self.balance_sum(True, n), n)
            out[debits] = format_cents(f[DEBITS])
            out[credits] = format_cents(f[CREDITS])
            out[fees] = format_cents(f[FEES])
            out[external] = format_cents(f[EXTERNAL])
            out[count] = f[COUNT]
        out["contribution_90d"] = format_amount(self.contribution_90d())
        out["days_since_activity"] = self.days_since_activity()
        return out


def publish(ref: MetricRef, value: Number) -> str | int:
    """A metric value as published: amounts as two-decimal strings, counts as integers."""
    if ref.is_amount:
        return format_amount(value)
    return int(value)
