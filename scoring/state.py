"""Per-customer state: what the core remembers, kept bounded and serialisable.

Balances are kept twice, each in the form its question needs:
- per account, the latest snapshot of each day that a late event could still touch (the
  lateness allowance) plus one base snapshot before it, to know what a late snapshot
  replaces;
- per customer, ``aum(d)`` and ``loan(d)`` as step functions (``series.Balances``) back
  to the longest window, for window sums.
Flows are summed per day (``series.Flows``). Everything older than the longest window and the lateness
allowance is rolled off at day closes (``prune``).

Encoding (``to_bytes``): version 2 is one byte ``0x02`` then MessagePack of the field list
below (binary ints and strings: a third smaller than version 1, the same list as JSON text,
which starts with ``[``). ``from_bytes`` reads both: a version's list is upcast to the
current one before the state is built, so states written by an older worker (in a changelog
or a local store) are read by a newer one.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

import msgpack
import orjson

from scoring.days import Day
from scoring.series import Balances, Flows

STATE_VERSION = 2
_V2 = b"\x02"  # version 1 is JSON text: its first byte is always "["
_US_PER_DAY = 86_400_000_000
_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()

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
    balances: Balances = field(default_factory=Balances)
    flows: Flows = field(default_factory=Flows)
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
            self.balances.shift(day, end, d_aum, d_loan)

    # --- flows ----------------------------------------------------------------------

    def add_flow(self, day: Day, debit: int, credit: int, fee: int, external: int, initiated: bool) -> None:
        self.flows.add(day, (debit, credit, fee, external, 1, int(initiated)))
        if initiated and (self.activity_day is None or day > self.activity_day):
            self.activity_day = day

    # --- roll-off -------------------------------------------------------------------

    def prune(self, keep_from: Day, mutable_from: Day) -> bool:
        """Forget what no window starting at or after ``keep_from`` needs and what no
        event on or after ``mutable_from`` (the first day not yet late) can change.
        True if anything was forgotten (the state's bytes changed)."""
        changed = False
        for acc in list(self.accounts):
            snaps = self.accounts[acc]
            if len(snaps) > 1 and snaps[1][0] < mutable_from:  # else nothing to forget
                del snaps[: bisect_left(snaps, mutable_from, key=_first) - 1]  # one base is kept
                changed = True
            if len(snaps) == 1 and snaps[0][0] < mutable_from and snaps[0][2] == 0:
                del self.accounts[acc]  # a zero base alone says what "no snapshot" says
                changed = True
        cut = min(keep_from, mutable_from)
        changed |= self.balances.prune(cut)
        flows_before = len(self.flows.days)
        active = self.flows.prune(cut)
        changed |= len(self.flows.days) != flows_before
        if active and (self.activity_before is None or active[-1] > self.activity_before):
            self.activity_before = active[-1]
        if self.seen and min(self.seen.values()) < mutable_from:
            # a copy of an id that old is a late dead letter: no need to remember it
            self.seen = {e: d for e, d in self.seen.items() if d >= mutable_from}
            changed = True
        return changed

    def decision_fields(self) -> tuple[object, ...]:
        """Every field a decision writes (``decide``): equal before and after a close
        whose decision changed nothing."""
        return (self.tier, self.since, self.sequence, self.watch, self.candidate, self.signals)

    # --- serialisation --------------------------------------------------------------

    def to_bytes(self) -> bytes:
        packed: bytes = msgpack.packb(
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
                # snapshot instants relative to the epoch day of their business day: shorter
                {
                    a: [[d, at - (d - _EPOCH_ORDINAL) * _US_PER_DAY, b, liab] for d, at, b, liab in snaps]
                    for a, snaps in self.accounts.items()
                },
                self.balances.to_list(),
                self.flows.to_list(),
                # the sums outgrow 64 bits (as far as MessagePack and JSON numbers go): strings
                [self.txn_n, str(self.txn_sum), str(self.txn_sumsq)],
                _group_ids(self.seen),
            ]
        )
        return _V2 + packed

    @classmethod
    def from_bytes(cls, data: bytes) -> CustomerState:
        v = _upcast(data)
        n, s, q = v[19]
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
            accounts={
                a: [[d, at + (d - _EPOCH_ORDINAL) * _US_PER_DAY, b, liab] for d, at, b, liab in snaps]
                for a, snaps in v[16].items()
            },
            balances=Balances.from_list(v[17]),
            flows=Flows.from_list(v[18]),
            txn_n=n,
            txn_sum=int(s),
            txn_sumsq=int(q),
            seen={e: row[0] for row in v[20] for e in row[1:]},
        )


def _upcast(data: bytes) -> list[Any]:
    """The field list of an encoded state, in the current version's layout."""
    v: list[Any]
    if data[:1] == _V2:
        v = msgpack.unpackb(memoryview(data)[1:])
    elif data[:1] == b"[":
        v = orjson.loads(data)
        if v[0] != 1:
            raise ValueError(f"customer state in JSON with version {v[0]}: only version 1 was JSON")
        # version 1 had version 2's fields in version 2's order: nothing to convert
    else:
        raise ValueError(f"not an encoded customer state (first byte {data[:1]!r})")
    return v


def _group_ids(seen: dict[str, Day]) -> list[list[Any]]:
    """Event ids grouped by day, ``[[day, id, id, ...], ...]``: each day written once."""
    by_day: dict[Day, list[Any]] = {}
    for event_id, day in seen.items():
        by_day.setdefault(day, [day]).append(event_id)
    return list(by_day.values())


def _first(row: list[int]) -> int:
    return row[0]
