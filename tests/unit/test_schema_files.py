"""The JSON Schema files describe what tierstream accepts and emits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from schemas import topics
from schemas.vocabulary import Reason
from scoring.events import Rejected
from scoring.parsing import parse
from streams.rules_file import load_rules
from tests.bank import Bank

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "json"


def schema(topic: topics.Topic) -> dict[str, Any]:
    return dict(json.loads((SCHEMAS / topic.schema).read_text()))


def test_every_topic_has_a_valid_schema_file() -> None:
    for topic in topics.ALL:
        jsonschema.Draft202012Validator.check_schema(schema(topic))


def test_the_dead_letter_schema_lists_the_reasons_in_check_order() -> None:
    assert schema(topics.DEAD_LETTERS)["properties"]["reason"]["enum"] == [r.value for r in Reason]


def test_a_realistic_day_of_outputs_matches_the_published_schemas() -> None:
    bank = Bank()
    bank.profile("c1", "2026-11-01", rm_id="rm1")
    bank.balance("c1", "2026-11-01", "46000")
    for i in range(20):
        bank.txn("c1", "2026-11-01", "100" if i % 2 else "300", time=f"10:{i:02d}:00")
    bank.txn("c1", "2026-11-01", "200000", kind="transfer_out", counterparty_bank="BANKB")
    bank.balance("c1", "2026-11-02", "600000")
    bank.send(topics.BALANCES, b"not json")
    bank.eod("2026-11-02")
    kinds = {o["type"] for o in bank.outputs}
    assert kinds == {"tier_change", "rm_alert", "risk_signal", "dead_letter"}
    by_type = {t.name: t for t in topics.OUTPUTS}
    name = {"tier_change": "tier-changes", "rm_alert": "rm-alerts", "risk_signal": "risk-signals"}
    for out in bank.outputs:
        value = {**out, "emitted_at": "2026-11-24T00:00:00Z"}  # the shell stamps it
        jsonschema.validate(value, schema(by_type[name.get(out["type"], "dead-letters")]))


@pytest.mark.parametrize(
    ("topic", "value"),
    [
        (topics.CUSTOMERS, {"event_id": "p", "customer_id": "c", "ts": "2026-11-01T00:00:00Z", "segment": "retail"}),
        (
            topics.TRANSACTIONS,
            {
                "event_id": "t",
                "customer_id": "c",
                "account_id": "a",
                "ts": "2026-11-01T00:00:00+01:00",
                "amount": "1.50",
                "currency": "EUR",
                "direction": "credit",
                "kind": "interest",
            },
        ),
        (topics.EOD, {"event_id": "e", "business_date": "2026-11-01"}),
    ],
)
def test_inputs_the_parser_accepts_match_the_schema(topic: topics.Topic, value: dict[str, Any]) -> None:
    assert not isinstance(parse(topic, orjson.dumps(value), load_rules()), Rejected)
    jsonschema.validate(value, schema(topic))
