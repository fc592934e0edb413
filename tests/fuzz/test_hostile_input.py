"""Hostile input through the parser and the core: nothing crashes, every bad record is a dead
letter with its reason, and records in = accepted + duplicates + dead letters, exactly.

Two generators: ``tests/hostile.py``'s seeded stream for volume (100,000 records per input
topic across the seeds, among valid records and duplicates, so customers exist and days
close), and hypothesis for shapes nobody listed (any JSON value, any bytes).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import topics
from schemas.vocabulary import Reason
from scoring.days import parse_day
from scoring.engine import Engine
from scoring.outputs import Output, Source
from scoring.projection import customer_view
from streams.rules_file import load_rules
from tests.hostile import HostileStream

RULES = load_rules()
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "json"
VALIDATORS = {
    t.name: jsonschema.Draft202012Validator(json.loads((SCHEMAS / t.schema).read_text())) for t in topics.OUTPUTS
}
SEEDS = (1, 2)
PER_TOPIC = int(os.environ.get("TS_FUZZ_RECORDS", "100000")) // len(SEEDS)  # per topic and seed
LAST_DAY = parse_day("2026-11-28")  # the stream's latest valid eod


class Checked:
    """An engine fed one record at a time, checking what each record did."""

    def __init__(self) -> None:
        self.engine = Engine(RULES)
        self.offset = 0
        self.validated = 0

    def send(self, topic: topics.Topic, key: bytes | None, raw: bytes | None) -> list[Output]:
        c = self.engine.counters
        before = (c.records_in, c.accepted + c.duplicates + sum(c.dead_letters.values()))
        self.offset += 1
        outputs = self.engine.process(topic, Source(topic.name, 0, self.offset, key, raw))
        after = (c.records_in, c.accepted + c.duplicates + sum(c.dead_letters.values()))
        assert after == (before[0] + 1, before[1] + 1), (raw, before, after)  # counted once, and one verdict
        for out in outputs:
            text = orjson.dumps(out.value)  # raises for anything that is not JSON text
            if self.offset % 97 == 0 or (out.topic is topics.DEAD_LETTERS and self.offset % 7 == 0):
                stamped = {**orjson.loads(text), "emitted_at": "2026-12-01T00:00:00Z"}  # the shell stamps it
                VALIDATORS[out.topic.name].validate(stamped)
                self.validated += 1
            if out.topic is topics.DEAD_LETTERS:
                assert out.value["reason"] in {r.value for r in Reason}
        return outputs


@pytest.mark.parametrize("seed", SEEDS)
def test_a_hostile_stream_never_crashes_the_core_and_every_record_is_counted_once(seed: int) -> None:
    checked = Checked()
    sent = dict.fromkeys(topics.INPUTS, 0)
    for topic, key, raw in HostileStream(seed).records(PER_TOPIC):
        dead = [o.value for o in checked.send(topic, key, raw) if o.topic is topics.DEAD_LETTERS]
        sent[topic] += 1
        if raw is None or b'\\ud800"' in raw or b"[" * 1_100 in raw:  # a tombstone, a lone surrogate, too deep
            assert [d["reason"] for d in dead] == ["invalid_json"], raw[:80] if raw else raw
    engine = checked.engine
    assert all(n == PER_TOPIC for n in sent.values()), sent
    c = engine.counters
    assert c.records_in == 4 * PER_TOPIC == c.accepted + c.duplicates + sum(c.dead_letters.values())
    # every reason came up, and far eods and events moved nothing far
    assert set(c.dead_letters) == {r.value for r in Reason}, c.dead_letters
    assert c.duplicates > 0 and c.accepted > PER_TOPIC
    assert engine.clock.closed == LAST_DAY
    for state in engine.states.values():
        assert state.last_day <= LAST_DAY + 1 + RULES.allowed_future_days
        orjson.dumps(customer_view(state, engine.clock, RULES))  # every view is JSON text
    assert checked.validated > PER_TOPIC // 20  # outputs checked against their JSON Schema


BALANCE = orjson.dumps(
    {
        "event_id": "b",
        "customer_id": "c1",
        "account_id": "a",
        "ts": "2026-11-02T09:00:00Z",
        "product": "savings",
        "balance": "5",
        "currency": "CNY",
    }
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=30,
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.sampled_from(topics.INPUTS),
    st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(
            st.sampled_from(["event_id", "customer_id", "account_id", "ts", "balance", "amount", "business_date"]),
            json_values,
        ).map(lambda v: json.dumps(v).encode()),
    ),
)
def test_any_bytes_or_json_value_is_a_dead_letter_or_an_event(topic: topics.Topic, raw: bytes) -> None:
    checked = Checked()
    checked.send(topics.BALANCES, b"c1", BALANCE)
    checked.send(topics.EOD, None, b'{"event_id":"e","business_date":"2026-11-02"}')  # a clock: late and future apply
    checked.send(topic, None, raw)
