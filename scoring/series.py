"""Daily series with running totals, so any window sum costs two binary searches.

Events arrive mostly in day order: appending to or updating the last day is O(1); a late
correction updates the running totals after it, O(days retained). Rolling off old days
keeps the running totals as they are: only differences of them are ever used.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from typing import Any

from scoring.days import Day

# Flow fields, per day.
DEBITS, CREDITS, FEES, EXTERNAL, COUNT, INITIATED = range(6)
FIELDS = 6


class Balances:
    """aum(d) and loan(d) as step functions: change point days with the values from them on.

    ``_cum_*[i]`` is the sum of the values of all days before ``days[i]``.
    """

    __slots__ = ("_cum_aum", "_cum_loan", "aum", "days", "loan")

    def __init__(self, days: list[Day] | None = None, aum: list[int] | None = None, loan: list[int] | None = None):
        self.days: list[Day] = days or []
        self.aum: list[int] = aum or []
        self.loan: list[int] = loan or []
        self._cum_aum: list[int] = [0] * len(self.days)
        self._cum_loan: list[int] = [0] * len(self.days)
        self._recum(1)

    def _recum(self, start: int) -> None:
        days, aum, loan, ca, cl = self.days, self.aum, self.loan, self._cum_aum, self._cum_loan
        for i in range(max(start, 1), len(days)):
            width = days[i] - days[i - 1]
            ca[i] = ca[i - 1] + aum[i - 1] * width
            cl[i] = cl[i - 1] + loan[i - 1] * width

    def at(self, d: Day, loan: bool) -> int:
        i = bisect_right(self.days, d) - 1
        if i < 0:
            return 0
        return self.loan[i] if loan else self.aum[i]

    def total(self, first: Day, last: Day, loan: bool) -> int:
        """Sum of the daily values over first..last inclusive."""
        return self._through(last, loan) - self._through(first - 1, loan)

    def _through(self, d: Day, loan: bool) -> int:
        i = bisect_right(self.days, d) - 1
        if i < 0:
            return 0  # before the first change point every value is 0 (see ``prune``)
        if loan:
            return self._cum_loan[i] + self.loan[i] * (d - self.days[i] + 1)
        return self._cum_aum[i] + self.aum[i] * (d - self.days[i] + 1)

    def shift(self, start: Day, end: Day | None, d_aum: int, d_loan: int) -> None:
        """Add deltas to the values of days start <= d < end (end None: for ever)."""
        lo = self._split(start)
        hi = len(self.days) if end is None else self._split(end)
        aum, loan = self.aum, self.loan
        for j in range(lo, hi):
            aum[j] += d_aum
            loan[j] += d_loan
        if lo + 1 < len(self.days):
            self._recum(lo + 1)

    def _split(self, day: Day) -> int:
        """Index of the change point at ``day``, inserting one (same values) if missing."""
        days = self.days
        i = bisect_left(days, day)
        if i == len(days) or days[i] != day:
            days.insert(i, day)
            self.aum.insert(i, self.aum[i - 1] if i else 0)
            self.loan.insert(i, self.loan[i - 1] if i else 0)
            self._cum_aum.insert(i, 0)
            self._cum_loan.insert(i, 0)
            self._recum(i)
        return i

    def prune(self, cut: Day) -> bool:
        """Forget change points no sum from ``cut`` on needs (True if there were any). The
        point in force on the day before ``cut`` is kept, so ``_through(cut - 1)`` stays exact."""
        i = bisect_right(self.days, cut - 1) - 1
        if i <= 0:
            return False
        for series in (self.days, self.aum, self.loan, self._cum_aum, self._cum_loan):
            del series[:i]
        return True

    def to_list(self) -> list[list[int]]:
        return [_deltas(self.days), self.aum, self.loan]

    @classmethod
    def from_list(cls, v: list[list[int]]) -> Balances:
        return cls(_undeltas(v[0]), v[1], v[2])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Balances) and self.to_list() == other.to_list()

    def __repr__(self) -> str:
        return f"Balances({self.to_list()})"


class Flows:
    """Per-day sums of transaction flows (fields DEBITS..INITIATED) with running totals.

    Running totals are kept per field (``_cum[k]``, one longer than ``days``): ``_cum[k][i]``
    is field k's total of every day before ``days[i]``, the days already rolled off
    included. Built column by column with ``itertools.accumulate`` (a decode builds them
    for every customer at every close).
    """

    __slots__ = ("_cum", "days", "rows")

    def __init__(self, days: list[Day] | None = None, rows: list[list[int]] | None = None) -> None:
        self.days: list[Day] = days or []
        self.rows: list[list[int]] = rows or []
        columns = zip(*self.rows, strict=True) if self.rows else [()] * FIELDS
        self._cum: list[list[int]] = [list(itertools.accumulate(c, initial=0)) for c in columns]

    def add(self, day: Day, amounts: tuple[int, int, int, int, int, int]) -> None:
        days = self.days
        i = len(days) - 1
        if i < 0 or days[i] != day:
            i = bisect_left(days, day)
            if i == len(days) or days[i] != day:
                days.insert(i, day)
                self.rows.insert(i, [0] * FIELDS)
                for cum in self._cum:
                    cum.insert(i + 1, cum[i])
        row = self.rows[i]
        for k in range(FIELDS):
            amount = amounts[k]
            if amount:
                row[k] += amount
                cum = self._cum[k]
                for j in range(i + 1, len(cum)):
                    cum[j] += amount

    def total(self, first: Day, last: Day) -> list[int]:
        """Per-field sums over the days first..last inclusive."""
        hi, lo = bisect_right(self.days, last), bisect_right(self.days, first - 1)
        return [cum[hi] - cum[lo] for cum in self._cum]

    def field_total(self, first: Day, last: Day, field: int) -> int:
        """One field's sum over the days first..last inclusive."""
        cum = self._cum[field]
        return cum[bisect_right(self.days, last)] - cum[bisect_right(self.days, first - 1)]

    def latest_initiated(self, upto: Day) -> Day | None:
        """The latest retained day <= upto with a customer-initiated transaction."""
        i = bisect_right(self.days, upto) - 1
        while i >= 0:
            if self.rows[i][INITIATED]:
                return self.days[i]
            i -= 1
        return None

    def prune(self, cut: Day) -> list[Day]:
        """Forget the days before ``cut``; returns those that had customer-initiated activity."""
        i = bisect_left(self.days, cut)
        if i == 0:
            return []
        active = [d for d, row in zip(self.days[:i], self.rows[:i], strict=True) if row[INITIATED]]
        del self.days[:i], self.rows[:i]
        for cum in self._cum:
            del cum[:i]
        return active

    def to_list(self) -> list[list[int]]:
        return [[d, *row] for d, row in zip(_deltas(self.days), self.rows, strict=True)]

    @classmethod
    def from_list(cls, v: list[Any]) -> Flows:
        return cls(_undeltas([r[0] for r in v]), [r[1:] for r in v])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Flows) and self.to_list() == other.to_list()

    def __repr__(self) -> str:
        return f"Flows({self.to_list()})"


def _deltas(days: list[Day]) -> list[int]:
    """Ascending days as first day and gaps (mostly 1): a third of the bytes of ordinals."""
    return [d - p for d, p in zip(days, [0, *days], strict=False)]


def _undeltas(deltas: list[int]) -> list[Day]:
    return list(itertools.accumulate(deltas))
