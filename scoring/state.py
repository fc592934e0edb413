"""Per-customer state: what the core remembers, kept bounded and serialisable.

Balances are kept twice, each in the form its question needs:
- per account, the latest snapshot of each day that a late event could still touch (the
  lateness allowance) plus one base snapshot before it, to know what a late snapshot
  replaces;
- per customer, ``aum(d)`` and ``loan(d)`` as a step function (a change point per day on
  which some balance changed) back to the longest window, for window sums.
Flows are summed per day. Everything older than the longest window and the lateness
allowance is rolled off at day closes (``prune``).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any

import orjson

from scoring.days import Day

STATE_VERSION = 1

# Flow bucket fields, per day.
DEBITS, CREDITS, FEES, EXTERNAL, COUNT, INITIATED = range(6)

# Risk signal bits for edge triggering.
SIGNAL_BITS = {"large_outflow": 1, "deposit_diversion": 2, "balance_drop": 4, "dormancy": 8}


@dataclass(slots=True)
class CustomerState:
    customer_id: str
    segment: str
    first_day: Day
    last_day: Day
    rm_id: str | None = None
    override: str | None = None
    profile_at: int | None = None  # instant of the profile in force; None: no profile yet
    activity_day: Day | None = None  # latest customer-initiated transaction day
    activity_before: Day | None = None  # the same, among flow buckets already rolled off
    tier: str | None = None  # None until the first evaluation
    since: Day = 0  # E: the as-of day at the latest tier change
    sequence: int = 0
    watch: int | None = None  # number of the latest below day of the running watch
    candidate: str | None = None  # "tier>target" while upgrade_candidate is true
    signals: int = 0  # SIGNAL_BITS of the signals currently true
    # account_id -> [[day, instant_us, balance_cents, is_liability], ...] ascending by day
    accounts: dict[str, list[list[int]]] = field(default_factory=dict)
    step_days: list[Day] = field(default_factory=list)
    step_aum: list[int] = field(default_factory=list)
    step_loan: list[int] = field(default_factory=list)
    flows: dict[Day, list[int]] = field(default_factory=dict)
    txn_n: int = 0  # all accepted transactions: count, sum and sum of squares of cents
    txn_sum: int = 0
    txn_sumsq: int = 0
    seen: dict[str, Day] = field(default_factory=dict)  # accepted event id -> its day

    # --- balances -------------------------------------------------------------------

    def apply_snapshot(self, account_id: str, day: Day, at: int, balance: int, liability: bool) -> None:
        """Record a balance snapshot and shift aum/loan over the days it now decides."""
        snaps = self.accounts.setdefault(account_id, [])
        i = bisect_left(snaps, day, key=_first)
        old: list[int] | None
        if i < len(snaps) and snaps[i][0] == day:
            if snaps[i][1] > at:
                return  # an earlier snapshot of a day that already has a later one
            old = snaps[i]
            snaps[i] = [day, at, balance, int(liability)]
            nxt = i + 1
        else:
            old = snaps[i - 1] if i > 0 else None
            snaps.insert(i, [day, at, balance, int(liability)])
            nxt = i + 1
        end = snaps[nxt][0] if nxt < len(snaps) else None
        d_aum = (0 if liability else balance) - (0 if old is None or old[3] else old[2])
        d_loan = (balance if liability else 0) - (old[2] if old is not None and old[3] else 0)
        if d_aum or d_loan:
            self._shift(day, end, d_aum, d_loan)

    def _shift(self, start: Day, end: Day | None, d_aum: int, d_loan: int) -> None:
        """Add deltas to aum(d) and loan(d) for start <= d < end (end None: for ever)."""
        days = self.step_days
        lo = self._split(start)
        hi = len(days) if end is None else self._split(end)
        aum, loan = self.step_aum, self.step_loan
        for j in range(lo, hi):
            aum[j] += d_aum
            loan[j] += d_loan

    def _split(self, day: Day) -> int:
        """Index of the change point at ``day``, inserting one (same values) if missing."""
        days = self.step_days
        i = bisect_left(days, day)
        if i == len(days) or days[i] != day:
            days.insert(i, day)
            self.step_aum.insert(i, self.step_aum[i - 1] if i else 0)
            self.step_loan.insert(i, self.step_loan[i - 1] if i else 0)
        return i

    # --- flows ----------------------------------------------------------------------

    def add_flow(self, day: Day, debit: int, credit: int, fee: int, external: int, initiated: bool) -> None:
        b = self.flows.get(day)
        if b is None:
            b = self.flows[day] = [0, 0, 0, 0, 0, 0]
        b[DEBITS] += debit
        b[CREDITS] += credit
        b[FEES] += fee
        b[EXTERNAL] += external
        b[COUNT] += 1
        if initiated:
            b[INITIATED] += 1
            if self.activity_day is None or day > self.activity_day:
                self.activity_day = day

    # --- roll-off -------------------------------------------------------------------

    def prune(self, keep_from: Day, mutable_from: Day) -> None:
        """Forget what no window starting at or after ``keep_from`` needs and what no
        event on or after ``mutable_from`` (the first day not yet late) can change."""
        for acc in list(self.accounts):
            snaps = self.accounts[acc]
            i = bisect_left(snaps, mutable_from, key=_first)
            if i > 1:
                del snaps[: i - 1]  # keep one base snapshot before the mutable days
            if len(snaps) == 1 and snaps[0][0] < mutable_from and snaps[0][2] == 0:
                del self.accounts[acc]  # a zero base alone says what "no snapshot" says
        cut = min(keep_from, mutable_from)
        i = bisect_right(self.step_days, cut) - 1
        if i > 0:
            del self.step_days[:i]
            del self.step_aum[:i]
            del self.step_loan[:i]
        # merge change points that no longer change anything
        days, aum, loan = self.step_days, self.step_aum, self.step_loan
        j = len(days) - 1
        while j > 0:
            if aum[j] == aum[j - 1] and loan[j] == loan[j - 1]:
                del days[j], aum[j], loan[j]
            j -= 1
        for d in [d for d in self.flows if d < cut]:
            if self.flows[d][INITIATED] and (self.activity_before is None or d > self.activity_before):
                self.activity_before = d
            del self.flows[d]
        if any(d < mutable_from for d in self.seen.values()):
            # a copy of an id that old is a late dead letter: no need to remember it
            self.seen = {e: d for e, d in self.seen.items() if d >= mutable_from}

    # --- serialisation --------------------------------------------------------------

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            [
                STATE_VERSION,
                self.customer_id,
                self.segment,
                self.first_day,
                self.last_day,
                self.rm_id,
                self.override,
                self.profile_at,
                self.activity_day,
                self.activity_before,
                self.tier,
                self.since,
                self.sequence,
                self.watch,
                self.candidate,
                self.signals,
                self.accounts,
                self.step_days,
                self.step_aum,
                self.step_loan,
                [[d, *b] for d, b in self.flows.items()],
                [self.txn_n, self.txn_sum, self.txn_sumsq],
                _group_ids(self.seen),
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> CustomerState:
        v: list[Any] = orjson.loads(data)
        if v[0] != STATE_VERSION:
            raise ValueError(f"customer state version {v[0]} is not {STATE_VERSION}")
        n, s, q = v[21]
        return cls(
            customer_id=v[1],
            segment=v[2],
            first_day=v[3],
            last_day=v[4],
            rm_id=v[5],
            override=v[6],
            profile_at=v[7],
            activity_day=v[8],
            activity_before=v[9],
            tier=v[10],
            since=v[11],
            sequence=v[12],
            watch=v[13],
            candidate=v[14],
            signals=v[15],
            accounts=v[16],
            step_days=v[17],
            step_aum=v[18],
            step_loan=v[19],
            flows={row[0]: row[1:] for row in v[20]},
            txn_n=n,
            txn_sum=s,
            txn_sumsq=q,
            seen={e: row[0] for row in v[22] for e in row[1:]},
        )


def _group_ids(seen: dict[str, Day]) -> list[list[Any]]:
    """Event ids grouped by day, ``[[day, id, id, ...], ...]``: each day written once."""
    by_day: dict[Day, list[Any]] = {}
    for event_id, day in seen.items():
        by_day.setdefault(day, [day]).append(event_id)
    return list(by_day.values())


def _first(row: list[int]) -> int:
    return row[0]
