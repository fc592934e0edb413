"""Input validation (contract §3 and §7): every dead-letter reason and its order."""

from __future__ import annotations

import orjson
import pytest

from schemas import topics
from scoring.events import Balance, EndOfDay, Profile, Rejected, Transaction
from scoring.parsing import parse
from streams.rules_file import load_rules

RULES = load_rules()

BALANCE = {
    "event_id": "b1",
    "customer_id": "c1",
    "account_id": "a1",
    "ts": "2026-11-02T09:30:00+08:00",
    "product": "savings",
    "balance": "1234.50",
    "currency": "CNY",
}
TXN = {
    "event_id": "t1",
    "customer_id": "c1",
    "account_id": "a1",
    "ts": "2026-11-02T09:30:00Z",
    "amount": "10.00",
    "currency": "CNY",
    "direction": "debit",
    "kind": "card_spend",
    "counterparty_bank": None,
}
PROFILE = {"event_id": "p1", "customer_id": "c1", "ts": "2026-11-02T00:00:00Z", "segment": "retail"}


def reason(topic: topics.Topic, value: object) -> str:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    result = parse(topic, raw, RULES)
    return result.reason if isinstance(result, Rejected) else "ok"


def with_(base: dict[str, object], **changes: object) -> dict[str, object]:
    return {**base, **changes}


def without(base: dict[str, object], key: str) -> dict[str, object]:
    return {k: v for k, v in base.items() if k != key}


def test_valid_balance_is_typed_in_base_cents() -> None:
    e = parse(topics.BALANCES, orjson.dumps(BALANCE), RULES)
    assert isinstance(e, Balance)
    assert e.balance == 123450
    assert not e.liability
    # 09:30 at +08:00 is 01:30 UTC, still 2 November in the UTC business calendar
    assert e.day == parse(topics.EOD, b'{"event_id":"x","business_date":"2026-11-02"}', RULES).business_date  # type: ignore[union-attr]


def test_offset_moves_the_business_day() -> None:
    # 07:30 at +08:00 on 2 November is 23:30 UTC on 1 November
    e = parse(topics.BALANCES, orjson.dumps(with_(BALANCE, ts="2026-11-02T07:30:00+08:00")), RULES)
    d = parse(topics.EOD, b'{"event_id":"x","business_date":"2026-11-01"}', RULES)
    assert isinstance(e, Balance) and isinstance(d, EndOfDay)
    assert e.day == d.business_date


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b'{"balance": NaN}', "invalid_json"),
        (b"", "invalid_json"),
        (b"[1, 2]", "schema"),
        (b'"a string"', "schema"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "invalid_json"),  # deeper than the decoder accepts
        (b"[" * 100_000, "invalid_json"),
        (b'{"event_id": "\\ud800", "customer_id": "c1"}', "invalid_json"),  # a lone surrogate
        (b'{"customer_id": "c1", "x": {"\\udfff": 1.5}}', "invalid_json"),  # in a key, beside a float
        (b'{"customer_id": "c1", "x": 12345678901234567890123, "y": "\\ud83d"}', "invalid_json"),
        (b'{"event_id": "\\ud83d\\ude00", "customer_id": "c1"}', "schema"),  # a pair is text
    ],
)
def test_undecodable_or_non_object_values(raw: bytes, expected: str) -> None:
    assert reason(topics.BALANCES, raw) == expected


def test_tombstone_is_invalid_json() -> None:
    result = parse(topics.BALANCES, None, RULES)
    assert isinstance(result, Rejected) and result.reason == "invalid_json"


@pytest.mark.parametrize(
    ("money", "expected"),
    [
        ("1234.50", "ok"),
        ("1234.5", "ok"),
        ("1234", "ok"),
        (1234, "ok"),
        (1.5, "ok"),
        (b"1.500", "ok"),  # the JSON number 1.500: exact value 1.5
        ("1.500", "schema"),  # the string does not match the pattern
        (b"1.005", "schema"),  # the number has three decimals
        ("1.005", "schema"),
        ("1,234.50", "schema"),
        ("", "schema"),
        (True, "schema"),  # booleans are not numbers
        (None, "schema"),
        ("-5.00", "schema"),  # matches the pattern but balances are >= 0
        (b"1e2", "ok"),  # 100
        (b"100000000000000000000000000", "schema"),  # beyond 10**15 units
    ],
)
def test_money_format(money: object, expected: str) -> None:
    if isinstance(money, bytes):  # a JSON number literal spliced in exactly as written
        raw = orjson.dumps(with_(BALANCE, balance="X")).replace(b'"X"', money)
        assert reason(topics.BALANCES, raw) == expected
    else:
        assert reason(topics.BALANCES, with_(BALANCE, balance=money)) == expected


def test_number_money_is_exact() -> None:
    raw = orjson.dumps(with_(BALANCE, balance="X")).replace(b'"X"', b"1234.50")
    e = parse(topics.BALANCES, raw, RULES)
    assert isinstance(e, Balance) and e.balance == 123450


@pytest.mark.parametrize(
    "ts",
    [
        "2026-11-02T09:30:00",  # no offset
        "2026-11-02",
        "2026-11-02 09:30:00Z",
        "2026-02-30T00:00:00Z",
        "2026-11-02T24:00:00Z",
        "2026-11-02T09:30:00+25:00",
        1700000000,
    ],
)
def test_timestamps_need_rfc3339_with_offset(ts: object) -> None:
    assert reason(topics.BALANCES, with_(BALANCE, ts=ts)) == "schema"


def test_precision_beyond_microseconds_is_ignored() -> None:
    a = parse(topics.BALANCES, orjson.dumps(with_(BALANCE, ts="2026-11-02T09:30:00.123456789Z")), RULES)
    b = parse(topics.BALANCES, orjson.dumps(with_(BALANCE, ts="2026-11-02T09:30:00.123456Z")), RULES)
    assert isinstance(a, Balance) and isinstance(b, Balance) and a.at == b.at


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (without(BALANCE, "event_id"), "schema"),
        (with_(BALANCE, event_id=""), "schema"),
        (with_(BALANCE, customer_id=7), "schema"),
        (without(BALANCE, "account_id"), "schema"),
        (with_(BALANCE, product="crypto"), "schema"),
        (with_(BALANCE, product="loan"), "ok"),
        (with_(BALANCE, currency=None), "schema"),
        (with_(BALANCE, currency="JPY"), "unknown_currency"),
        (with_(BALANCE, currency="usd"), "unknown_currency"),  # codes are case-sensitive
        (with_(BALANCE, currency="USD"), "ok"),
        (with_(BALANCE, colour="blue"), "ok"),  # unknown extra fields are ignored
        (with_(TXN, amount="0.00"), "schema"),
        (with_(TXN, amount="-1.00"), "schema"),
        (with_(TXN, direction="sideways"), "schema"),
        (with_(TXN, kind="gift"), "schema"),
        (with_(TXN, counterparty_bank=5), "schema"),
        (without(TXN, "counterparty_bank"), "ok"),  # a missing nullable field means null
        (with_(PROFILE, segment="vip"), "schema"),
        (with_(PROFILE, tier_override="gold"), "ok"),
        (with_(PROFILE, tier_override="strategic"), "unknown_tier"),  # a corporate tier
        (with_(PROFILE, rm_id=3), "schema"),
    ],
)
def test_field_rules(value: dict[str, object], expected: str) -> None:
    topic = topics.TRANSACTIONS if "amount" in value else topics.CUSTOMERS if "segment" in value else topics.BALANCES
    assert reason(topic, value) == expected


def test_schema_is_checked_before_currency() -> None:
    # both wrong: the schema error wins (reasons are checked in the contract's order)
    assert reason(topics.BALANCES, with_(BALANCE, currency="JPY", balance="x")) == "schema"


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("9999-12-30T10:00:00Z", "ok"),
        ("9999-12-31T10:00:00Z", "schema"),  # a day with no next day
        ("9999-12-30T23:00:00-05:00", "schema"),  # its day in the rules' zone (UTC) is 9999-12-31
        ("0001-01-01T00:00:00Z", "ok"),
        ("0001-01-01T00:00:00+05:00", "schema"),  # before the calendar's first day
    ],
)
def test_an_event_day_must_be_a_calendar_day_with_a_next_day(ts: str, expected: str) -> None:
    for topic, value in ((topics.BALANCES, BALANCE), (topics.TRANSACTIONS, TXN), (topics.CUSTOMERS, PROFILE)):
        assert reason(topic, with_(value, ts=ts)) == expected


def test_eod_needs_a_real_date() -> None:
    assert reason(topics.EOD, {"event_id": "e", "business_date": "9999-12-31"}) == "schema"
    assert reason(topics.EOD, {"event_id": "e", "business_date": "9999-12-30"}) == "ok"
    assert reason(topics.EOD, {"event_id": "e", "business_date": "2026-13-01"}) == "schema"
    assert reason(topics.EOD, {"business_date": "2026-11-01"}) == "schema"
    assert reason(topics.EOD, {"event_id": "e", "business_date": "2026-11-01"}) == "ok"


def test_missing_nullable_profile_fields_are_null() -> None:
    e = parse(topics.CUSTOMERS, orjson.dumps(PROFILE), RULES)
    assert isinstance(e, Profile) and e.rm_id is None and e.tier_override is None


def test_fx_converts_each_amount_half_even_to_the_cent() -> None:
    # 0.05 HKD x 0.91 = 0.0455 CNY -> 0.05 (4.55 cents -> 5); 0.15 HKD x 0.91 = 0.1365 -> 0.14
    # half-even: 0.50 HKD x 0.91 = 0.455 -> 0.46 (45.5 cents, 45 odd -> 46); 1.50 x 0.91 = 1.365 -> 1.36
    def cents(amount: str) -> int:
        e = parse(topics.TRANSACTIONS, orjson.dumps(with_(TXN, amount=amount, currency="HKD")), RULES)
        assert isinstance(e, Transaction)
        return e.amount

    assert cents("0.05") == 5
    assert cents("0.15") == 14
    assert cents("0.50") == 46
    assert cents("1.50") == 136
