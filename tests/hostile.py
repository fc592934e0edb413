"""Hostile input records, as an upstream gone wrong (or an attacker) would send them.

``HostileStream`` yields ``(topic, key, value)`` for every input topic: mostly records
mutated from valid ones — malformed JSON, wrong types, huge numbers and strings, deep
nesting, invalid UTF-8, lone surrogates, null and empty values, wrong keys, events far in
the future and the past, eods for impossible or far dates — among valid ones and exact
copies (duplicates), so the customers the bad records name exist and days do close.
Seeded: the same seed gives the same records.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from schemas import topics

Record = tuple[topics.Topic, bytes | None, bytes | None]

_DAYS = [f"2026-11-{d:02d}" for d in range(1, 29)]
_FAR_TS = [
    "2062-11-02T09:30:00Z",  # a mistyped year
    "1970-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+05:00",  # before the calendar in UTC
    "9999-12-30T23:59:59Z",
    "9999-12-31T00:00:00Z",  # a day with no next day
    "9999-12-30T23:00:00-05:00",
    "2026-11-02 09:30:00Z",  # a space for the T
    "2026-02-30T00:00:00Z",
    "2026-11-02T09:30:00.123456789+08:00",
    "2026-11-02T09:30:00+24:00",
    "2026-11-02T09:30:60Z",
    "",
]
_FAR_DATES = ["2062-11-07", "9999-12-31", "9999-12-30", "0001-01-01", "2026-02-30", "2026-11-32", "26-11-01", ""]
_WEIRD = [
    None,
    True,
    0,
    -1,
    1.5,
    1e308,
    orjson.Fragment(b"1000000000000000000000000000000"),  # beyond 64 bits
    orjson.Fragment(b"-100000000000000000000"),
    "",
    " ",
    "\u0000",
    "\u202e",
    "😀",
    "x" * 100_000,
    [],
    {},
    [1, 2],
    {"a": None},
    "1234.567",
    "1e5",
    "-0.00",
    "999999999999999.99",
    "1000000000000000",
    "NaN",
]


class HostileStream:
    """Records for ``customers`` customers over the days of November 2026."""

    def __init__(self, seed: int, customers: int = 50) -> None:
        self.rng = random.Random(seed)
        self.customers = [f"H{seed}-{i}" for i in range(customers)]
        self.day = 0
        self.sent: dict[topics.Topic, list[Record]] = {t: [] for t in topics.INPUTS}  # valid, for duplicates
        self._ids = 0

    def records(self, per_topic: int) -> Iterator[Record]:
        """``per_topic`` records of each input topic, interleaved, an eod now and then."""
        makers: dict[topics.Topic, Callable[[], dict[str, Any]]] = {
            topics.CUSTOMERS: self._profile,
            topics.BALANCES: self._balance,
            topics.TRANSACTIONS: self._transaction,
            topics.EOD: self._eod,
        }
        left = dict.fromkeys(makers, per_topic)
        while left:
            topic = self.rng.choice(list(left))
            left[topic] -= 1
            if not left[topic]:
                del left[topic]
            yield self._record(topic, makers[topic])

    # --- one record ---------------------------------------------------------------------

    def _record(self, topic: topics.Topic, make: Callable[[], dict[str, Any]]) -> Record:
        roll = self.rng.random()
        if topic is topics.EOD and roll < 0.97:
            return self._eod_record(roll)
        value = make()
        key = value.get("customer_id", "").encode() if type(value.get("customer_id")) is str else None
        if roll < 0.35:  # valid: customers exist and build up state
            record = (topic, key, orjson.dumps(value))
            self.sent[topic].append(record)
            return record
        if roll < 0.40 and self.sent[topic]:  # an exact copy of an earlier record
            return self.rng.choice(self.sent[topic])
        return self._mutate(topic, key, value)

    def _eod_record(self, roll: float) -> Record:
        if roll < 0.9:  # mostly the next day, now and then the same or a skipped one
            self.day = min(self.day + self.rng.choice([0, 1, 1, 1, 2]), len(_DAYS) - 1)
            day = _DAYS[self.day]
            return topics.EOD, None, orjson.dumps({"event_id": f"eod-{day}", "business_date": day})
        value = {"event_id": "eod-far", "business_date": self.rng.choice(_FAR_DATES)}
        return topics.EOD, None, orjson.dumps(value)

    def _mutate(self, topic: topics.Topic, key: bytes | None, value: dict[str, Any]) -> Record:
        rng = self.rng
        field = rng.choice(list(value))
        kind = rng.randrange(14)
        raw: bytes | None
        if kind == 0:  # a field missing
            del value[field]
        elif kind == 1:  # a field of another type or size
            value[field] = rng.choice(_WEIRD)
        elif kind == 2:  # far or malformed times
            value["ts" if "ts" in value else field] = rng.choice(_FAR_TS)
        elif kind == 3:  # nested past any decoder's limit, or just deep
            depth = rng.choice([10, 1_000, 1_100, 5_000, 50_000])
            value[field] = orjson.Fragment(b"[" * depth + b"1" + b"]" * depth)
        elif kind == 4:  # a lone surrogate where text should be
            value[field] = orjson.Fragment(rng.choice([b'"\\ud800"', b'"a\\udfffb"', b'"\\ud83d"']))
        elif kind == 5:  # huge numbers as JSON literals
            literal = rng.choice([b"1e400", b"-1e400", b"123456789012345678901234567890", b"1.0000000000001", b"-0"])
            value[field] = orjson.Fragment(literal)
        elif kind == 6:  # unknown fields beside valid ones
            value[rng.choice(["extra", "", "\u0000", "customer_id "])] = rng.choice(_WEIRD)
        elif kind == 7:  # a wrong key (the value's customer_id decides)
            key = rng.choice([b"", b"\xff\xfe", b"someone-else", None])
        if kind == 8:
            raw = None  # a tombstone
        elif kind == 9:
            raw = rng.choice([b"", b"{", b"null", b"[]", b'"x"', b"{}", b"NaN", b"\xff\xfe\xfd", b'{"a":1}}'])
        elif kind == 10:  # invalid UTF-8 inside an otherwise valid record
            body = orjson.dumps(value)
            cut = rng.randrange(len(body))
            raw = body[:cut] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80"]) + body[cut:]
        elif kind == 11:  # truncated
            body = orjson.dumps(value)
            raw = body[: rng.randrange(len(body))]
        elif kind == 12:  # a valid record of another topic
            raw = orjson.dumps(self._balance() if topic is not topics.BALANCES else self._transaction())
        else:
            raw = orjson.dumps(value)
        return topic, key, raw

    # --- valid values -------------------------------------------------------------------

    def _id(self) -> str:
        self._ids += 1
        return f"h{self._ids}"

    def _ts(self) -> str:
        # around the clock: a few days back (some late), the current day, a few ahead
        d = max(0, min(len(_DAYS) - 1, self.day + self.rng.randint(-9, 3)))
        return f"{_DAYS[d]}T{self.rng.randrange(24):02d}:{self.rng.randrange(60):02d}:00+0{self.rng.randrange(9)}:00"

    def _customer(self) -> str:
        return self.rng.choice(self.customers)

    def _profile(self) -> dict[str, Any]:
        return {
            "event_id": self._id(),
            "customer_id": self._customer(),
            "ts": self._ts(),
            "segment": self.rng.choice(["retail", "retail", "corporate"]),
            "rm_id": self.rng.choice([None, "rm1"]),
            "tier_override": self.rng.choice([None, None, "gold", "platinum", "no-such-tier"]),
        }

    def _balance(self) -> dict[str, Any]:
        return {
            "event_id": self._id(),
            "customer_id": self._customer(),
            "account_id": self.rng.choice(["a1", "a2", "loan"]),
            "ts": self._ts(),
            "product": self.rng.choice(["savings", "current", "time_deposit", "loan", "credit_card", "fund", "gold"]),
            "balance": f"{self.rng.randrange(10 ** self.rng.randrange(1, 10))}.{self.rng.randrange(100):02d}",
            "currency": self.rng.choice(["CNY", "CNY", "USD", "XXX"]),
        }

    def _transaction(self) -> dict[str, Any]:
        return {
            "event_id": self._id(),
            "customer_id": self._customer(),
            "account_id": "a1",
            "ts": self._ts(),
            "amount": f"{self.rng.randrange(1, 10 ** self.rng.randrange(1, 9))}.{self.rng.randrange(100):02d}",
            "currency": self.rng.choice(["CNY", "USD", "EUR"]),
            "direction": self.rng.choice(["debit", "credit", "sideways"]),
            "kind": self.rng.choice(["card_spend", "transfer_out", "transfer_in", "fee", "interest", "salary"]),
            "counterparty_bank": self.rng.choice([None, "OTHER", "BANKA"]),
        }

    def _eod(self) -> dict[str, Any]:
        return {"event_id": "eod", "business_date": _DAYS[self.day]}
