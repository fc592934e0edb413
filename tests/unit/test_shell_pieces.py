"""The shell's pure pieces: settings from an environment, routed-record framing, routing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from streams.app import customer_of, frame, partition_of, unframe
from streams.settings import Settings, SettingsError


def test_settings_defaults_follow_the_spec(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "TIERSTREAM_BROKER": "127.0.0.1:9092",
            "TIERSTREAM_REDIS_URL": "redis://r",
            "TIERSTREAM_DATA_DIR": str(tmp_path),
        }
    )
    assert (s.broker, s.topic_prefix, s.redis_prefix, s.app_id) == ("kafka://127.0.0.1:9092", "", "tier:", "tierstream")
    assert (s.partitions, s.web_port, s.broker_flavor, s.rules_path) == (8, 6066, "kafka", None)
    assert s.close_wait_warning == 60


def test_settings_use_the_development_stack_when_unset(tmp_path: Path) -> None:
    (tmp_path / "dev.json").write_text(json.dumps({"broker": "kafka://127.0.0.1:5555", "redis_url": "redis://x/0"}))
    s = Settings.from_env({"TIERSTREAM_DATA_DIR": str(tmp_path)})
    assert (s.broker, s.redis_url, s.broker_flavor) == ("kafka://127.0.0.1:5555", "redis://x/0", "tansu")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "TIERSTREAM_BROKER"),
        ({"TIERSTREAM_BROKER": "b:1"}, "TIERSTREAM_REDIS_URL"),
        ({"TIERSTREAM_BROKER": "b:1", "TIERSTREAM_REDIS_URL": "r", "TIERSTREAM_PARTITIONS": "0"}, "PARTITIONS"),
        ({"TIERSTREAM_BROKER": "b:1", "TIERSTREAM_REDIS_URL": "r", "TIERSTREAM_WEB_PORT": "x"}, "WEB_PORT"),
        ({"TIERSTREAM_BROKER": "b:1", "TIERSTREAM_REDIS_URL": "r", "TIERSTREAM_BROKER_FLAVOR": "pulsar"}, "FLAVOR"),
        ({"TIERSTREAM_BROKER": "b:1", "TIERSTREAM_REDIS_URL": "r", "TIERSTREAM_CLOSE_WAIT_WARNING": "0"}, "CLOSE_WAIT"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({**env, "TIERSTREAM_DATA_DIR": str(tmp_path)})


def test_routed_frames_keep_the_raw_bytes_exactly() -> None:
    raw = b'{"a": 1}\n\xff\xfe not utf-8'
    header, back = unframe(frame(["R", "balances", 3, 42, 1700000000000, "k\xe9y"], raw))
    assert header == ["R", "balances", 3, 42, 1700000000000, "k\xe9y"] and back == raw
    assert unframe(frame(["W", {"balances:0": 5}], None)) == (["W", {"balances:0": 5}], None)


@pytest.mark.parametrize(
    ("raw", "customer"),
    [
        (b'{"customer_id": "c1"}', "c1"),
        (b'{"customer_id": ""}', None),
        (b'{"customer_id": 7}', None),
        (b"[1]", None),
        (b"{oops", None),
        (None, None),
    ],
)
def test_the_value_decides_the_customer(raw: bytes | None, customer: str | None) -> None:
    assert customer_of(raw) == customer


def test_routing_matches_kafkas_default_partitioner() -> None:
    # the scorer finds a customer's partition (for its table and closes) the way the
    # producer chose it when routing by key; kafka-python's murmur2 is an independent
    # port of the Java client's
    for cid in ("R000001", "C000042", "客户-7", "x" * 40):
        assert partition_of(cid, 8) == (kafka_python_murmur2(cid.encode()) & 0x7FFFFFFF) % 8


def test_a_table_value_keeps_its_outbox_through_the_changelog() -> None:
    from faust.serializers import codecs

    from scoring.state import CustomerState
    from streams.app import Stored

    state = CustomerState("c1", "retail", 739000, 739001, tier="gold", sequence=7)
    value = Stored(state, [(6, b'{"event_id":"c1:6","sequence":6}'), (7, b'{"event_id":"c1:7","sequence":7}')])
    codec = codecs.get_codec("tierstate")
    back = codec.loads(codec.dumps(value))
    assert back.state == state and back.outbox == value.outbox
    assert Stored.from_data(back) is back  # Faust's rebuild hook returns what the codec built
    assert codec.loads(codec.dumps(Stored(state))).outbox == []
