"""Typed input events, as the core sees them after parsing (times as instants and days,
money as integer cents of the base currency), and the rejection of a record that is none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.vocabulary import Reason
from scoring.days import Day

# Events are plain (not frozen) slotted dataclasses: constructing a frozen one costs ~8x
# more, and one is built per input record. Nothing mutates them.


@dataclass(slots=True)
class Profile:
    event_id: str
    customer_id: str
    ts: str  # as it arrived
    at: int  # instant, microseconds since the epoch
    day: Day
    segment: str
    rm_id: str | None
    tier_override: str | None


@dataclass(slots=True)
class Balance:
    event_id: str
    customer_id: str
    ts: str
    at: int
    day: Day
    account_id: str
    product: str
    liability: bool
    balance: int  # cents of the base currency


@dataclass(slots=True)
class Transaction:
    event_id: str
    customer_id: str
    ts: str
    at: int
    day: Day
    account_id: str
    amount: int  # cents of the base currency, > 0
    debit: bool
    kind: str
    counterparty_bank: str | None


@dataclass(slots=True)
class EndOfDay:
    event_id: str
    business_date: Day


CustomerEvent = Profile | Balance | Transaction
Event = CustomerEvent | EndOfDay


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input that becomes a dead letter; ``value`` is the decoded JSON if it decoded."""

    reason: Reason
    error: str
    value: Any
