"""Input records: raw bytes -> a typed event, or a rejection with its dead-letter reason.

The checks are made in the order of the dead-letter reasons: ``invalid_json``, ``schema``,
``unknown_currency``, ``unknown_tier`` (``late`` needs the clock and is the core's).
This is the hot path, so it is hand-written rather than a generic JSON Schema validator;
``tests/unit/test_schema_files.py`` holds it to the published JSON Schema files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from decimal import Decimal
from fractions import Fraction
from typing import Any

import orjson

from schemas.topics import BALANCES, CUSTOMERS, EOD, TRANSACTIONS, Topic
from schemas.vocabulary import ASSET_PRODUCTS, DIRECTIONS, KINDS, LIABILITY_PRODUCTS, Reason
from scoring.days import FIRST_DAY, LAST_DAY, Day, parse_day, parse_instant
from scoring.events import Balance, EndOfDay, Event, Profile, Rejected, Transaction
from scoring.money import convert_cents
from scoring.rules import Rules


class _Invalid(Exception):
    def __init__(self, reason: Reason, error: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error


# Magnitudes stop at 10**15 currency units so a hostile literal cannot cost unbounded work.
_MONEY = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,2})?")
_MAX_CENTS = 10**17


def _raise_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _Inexact(Exception):
    """A money field was decoded as a binary float: decode the record again exactly."""


def decode(raw: bytes | None) -> Any:
    """JSON bytes -> Python value, fast. Raises _Invalid(invalid_json)."""
    if raw is None:
        raise _Invalid(Reason.INVALID_JSON, "no value (tombstone)")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _decode_exact(raw)  # orjson refuses integers beyond 64 bits; json does not


def _decode_exact(raw: bytes) -> Any:
    """What orjson refused (integers beyond 64 bits, lone surrogates, nesting deeper than
    1,024 levels, bad JSON), or a value with money as floats, decoded by the standard
    library with numbers exact; values orjson would refuse for their content stay refused."""
    try:
        value = json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_raise_constant)
    except RecursionError:
        raise _Invalid(Reason.INVALID_JSON, "not valid JSON: nested deeper than the decoder accepts") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise _Invalid(Reason.INVALID_JSON, f"not valid JSON: {e}") from None
    if b"\\u" in raw and _has_lone_surrogate(value):  # only an escape can write one
        raise _Invalid(Reason.INVALID_JSON, "not valid JSON text: a string holds a lone surrogate")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    """Whether any string of a decoded value (keys included) holds a lone surrogate (it is
    no Unicode text: nothing downstream could encode it). Iterative: the value may be nested
    as deep as the decoder allows."""
    stack = [value]
    while stack:
        x = stack.pop()
        if type(x) is dict:
            stack += x.keys()
            stack += x.values()
        elif type(x) is list:
            stack += x
        elif type(x) is str:
            try:
                x.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def customer_of(raw: bytes | None) -> str | None:
    """The record's customer_id if it decodes to an object with a non-empty string there,
    decoded as ``parse`` decodes (routing by it agrees with parsing by construction)."""
    try:
        value = decode(raw)
    except _Invalid:
        return None
    cid = value.get("customer_id") if type(value) is dict else None
    return cid if type(cid) is str and cid else None


def _str(v: dict[str, Any], key: str) -> str:
    x = v.get(key)
    if type(x) is not str or not x:
        raise _Invalid(Reason.SCHEMA, f"{key}: required, a non-empty string")
    return x


def _nullable(v: dict[str, Any], key: str) -> str | None:
    x = v.get(key)
    if x is None or type(x) is str:
        return x
    raise _Invalid(Reason.SCHEMA, f"{key}: must be a string or null")


def _enum(v: dict[str, Any], key: str, allowed: Collection[str]) -> str:
    x = v.get(key)
    if type(x) is not str or x not in allowed:
        raise _Invalid(Reason.SCHEMA, f"{key}: must be one of {', '.join(sorted(allowed))}")
    return x


def _instant(v: dict[str, Any], rules: Rules) -> tuple[str, int, Day]:
    """The event's ``ts`` as written, as an instant, and its day in the rules' zone."""
    x = v.get("ts")
    if type(x) is not str:
        raise _Invalid(Reason.SCHEMA, "ts: required, an RFC 3339 date-time with an offset")
    try:
        at = parse_instant(x)
        day = rules.zone.day_of(at)
    except ValueError as e:
        raise _Invalid(Reason.SCHEMA, f"ts: {e}") from None
    except OverflowError:  # an offset moved it out of the years 1-9999
        raise _Invalid(Reason.SCHEMA, "ts: outside the calendar (years 1 to 9999)") from None
    return x, at, _in_calendar("ts", day)


def _in_calendar(key: str, day: Day) -> Day:
    """``day`` if it is a calendar day with a next day (``FIRST_DAY``, ``LAST_DAY``)."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise _Invalid(Reason.SCHEMA, f"{key}: its day must be within 0001-01-01 to 9999-12-30 (a day with a next day)")
    return day


def money_cents(x: Any) -> int | None:
    """Cents of a money value (contract §3), or None if it is not one."""
    t = type(x)
    if t is str:
        if _MONEY.fullmatch(x) is None:
            return None
        whole, _, frac = x.partition(".")
        if len(frac) == 2:
            return int(whole + frac)  # one int() for "-12.34": "-1234"
        return int(whole + frac) * (10 if frac else 100)
    if t is int:
        scaled: int = x * 100
        return scaled if -_MAX_CENTS < scaled < _MAX_CENTS else None
    if isinstance(x, Decimal):
        return _decimal_cents(x)
    if t is float:
        raise _Inexact
    return None  # booleans, null, anything else


def _decimal_cents(x: Decimal) -> int | None:
    """Cents of a JSON number decoded exactly, if its exact value has at most two decimals."""
    sign, digits, exp = x.as_tuple()
    # whole digits beyond 15, or literals absurdly long, are out of range, not arithmetic
    if not isinstance(exp, int) or len(digits) + exp > 15 or exp < -60 or len(digits) > 80:
        return None
    n = int("".join(map(str, digits)))
    shift = exp + 2
    cents: int
    if shift >= 0:
        cents = n * 10**shift
    else:
        cents, rest = divmod(n, 10**-shift)
        if rest:
            return None
    if cents >= _MAX_CENTS:
        return None
    return -cents if sign else cents


def _money(v: dict[str, Any], key: str) -> int:
    cents = money_cents(v.get(key))
    if cents is None:
        raise _Invalid(
            Reason.SCHEMA, f'{key}: must be money: a string like "1234.50" or a number with at most two decimals'
        )
    return cents


def _currency(v: dict[str, Any]) -> str:
    code = v.get("currency")
    if type(code) is not str or not code:
        raise _Invalid(Reason.SCHEMA, "currency: required, a non-empty string")
    return code


def _rate(code: str, rules: Rules) -> Fraction:
    rate = rules.fx.get(code)
    if rate is None:
        raise _Invalid(Reason.UNKNOWN_CURRENCY, f"currency {code!r} has no rate in the rules' fx")
    return rate


def _profile(v: dict[str, Any], rules: Rules) -> Profile:
    event_id, customer_id = _str(v, "event_id"), _str(v, "customer_id")
    ts, at, day = _instant(v, rules)
    segment = _enum(v, "segment", rules.segments.keys())
    rm_id, override = _nullable(v, "rm_id"), _nullable(v, "tier_override")
    if override is not None and not rules.tier_exists(segment, override):
        raise _Invalid(Reason.UNKNOWN_TIER, f"tier_override {override!r} is not a tier of the {segment} ladder")
    return Profile(event_id, customer_id, ts, at, day, segment, rm_id, override)


def _balance(v: dict[str, Any], rules: Rules) -> Balance:
    event_id, customer_id, account_id = _str(v, "event_id"), _str(v, "customer_id"), _str(v, "account_id")
    ts, at, day = _instant(v, rules)
    product = v.get("product")
    if type(product) is not str:  # a list or an object would not even hash
        product = None
    if product in ASSET_PRODUCTS:
        liability = False
    elif product in LIABILITY_PRODUCTS:
        liability = True
    else:
        raise _Invalid(
            Reason.SCHEMA, f"product: must be one of {', '.join(sorted(ASSET_PRODUCTS | LIABILITY_PRODUCTS))}"
        )
    cents = _money(v, "balance")
    if cents < 0:
        raise _Invalid(Reason.SCHEMA, "balance: must be >= 0 (for loans and cards: the amount owed)")
    code = _currency(v)
    amount = convert_cents(cents, _rate(code, rules))
    return Balance(event_id, customer_id, ts, at, day, account_id, product, liability, amount)


def _transaction(v: dict[str, Any], rules: Rules) -> Transaction:
    event_id, customer_id, account_id = _str(v, "event_id"), _str(v, "customer_id"), _str(v, "account_id")
    ts, at, day = _instant(v, rules)
    cents = _money(v, "amount")
    if cents <= 0:
        raise _Invalid(Reason.SCHEMA, "amount: must be > 0")
    direction = _enum(v, "direction", DIRECTIONS)
    kind = _enum(v, "kind", KINDS)
    counterparty = _nullable(v, "counterparty_bank")
    code = _currency(v)
    amount = convert_cents(cents, _rate(code, rules))
    return Transaction(
        event_id,
        customer_id,
        ts,
        at,
        day,
        account_id,
        amount,
        direction == "debit",
        kind,
        counterparty,
    )


def _eod(v: dict[str, Any], rules: Rules) -> EndOfDay:
    event_id = _str(v, "event_id")
    date = v.get("business_date")
    if type(date) is not str:
        raise _Invalid(Reason.SCHEMA, "business_date: required, a YYYY-MM-DD date")
    try:
        return EndOfDay(event_id, _in_calendar("business_date", parse_day(date)))
    except ValueError as e:
        raise _Invalid(Reason.SCHEMA, f"business_date: {e}") from None


_PARSERS: dict[str, Callable[[dict[str, Any], Rules], Event]] = {
    CUSTOMERS.name: _profile,
    BALANCES.name: _balance,
    TRANSACTIONS.name: _transaction,
    EOD.name: _eod,
}


def parse(topic: Topic, raw: bytes | None, rules: Rules) -> Event | Rejected:
    """Validate one input value of ``topic``; never raises for bad data."""
    value: Any = None
    try:
        value = decode(raw)
        if type(value) is not dict:
            raise _Invalid(Reason.SCHEMA, "the value must be a JSON object")
        try:
            return _PARSERS[topic.name](value, rules)
        except _Inexact:
            assert raw is not None  # decode() refused None
            value = _decode_exact(raw)  # numbers with a fraction as exact Decimals
            return _PARSERS[topic.name](value, rules)
    except _Invalid as e:
        return Rejected(e.reason, e.error, value)
