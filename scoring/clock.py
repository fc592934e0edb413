"""The application's one clock: the latest closed business day, and what it decides —
which days an ``eod`` closes, which events are late, and each customer's as-of day."""

from __future__ import annotations

from dataclasses import dataclass

from scoring.days import Day
from scoring.rules import Rules
from scoring.state import CustomerState


@dataclass(frozen=True, slots=True)
class Clock:
    """The latest closed business day (None before any ``eod``)."""

    closed: Day | None = None

    def advance(self, business_date: Day) -> list[Day]:
        """Days an ``eod`` for ``business_date`` closes, ascending (none if already closed)."""
        if self.closed is None:
            return [business_date]  # the first eod ever closes only its own date
        return list(range(self.closed + 1, business_date + 1))

    def is_late(self, day: Day, rules: Rules) -> bool:
        return self.closed is not None and day <= self.closed - rules.allowed_lateness_days

    def is_future(self, day: Day, rules: Rules) -> bool:
        """An event on ``day`` is too far ahead (nothing is before the first close): one
        mistyped year must not move a customer's as-of day decades ahead."""
        return self.closed is not None and day > self.closed + 1 + rules.allowed_future_days

    def skips_too_far(self, business_date: Day, rules: Rules) -> bool:
        """An eod for ``business_date`` would close too many days at once (a mistyped year
        would close tens of thousands for every customer)."""
        return self.closed is not None and business_date > self.closed + rules.allowed_future_days

    def as_of(self, st: CustomerState) -> Day:
        """The customer's as-of day X."""
        if self.closed is None or st.last_day > self.closed:
            return st.last_day
        return self.closed + 1
