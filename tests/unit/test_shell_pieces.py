"""The shell's pure pieces: settings from an environment, routed-record framing, routing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from streams.frames import Frame, Routed, Watermarks, decode, encode
from streams.routing import partition_of
from streams.settings import Settings, SettingsError

DATA = Path(__file__).parent / "data"


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


def test_settings_read_no_file_of_the_development_stack(tmp_path: Path) -> None:
    (tmp_path / "dev.json").write_text(json.dumps({"broker": "kafka://127.0.0.1:5555", "redis_url": "redis://x/0"}))
    with pytest.raises(SettingsError, match="TIERSTREAM_BROKER is not set"):
        Settings.from_env({"TIERSTREAM_DATA_DIR": str(tmp_path)})


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


@pytest.mark.parametrize(
    "frame",
    [
        Routed("balances", 3, 42, 1700000000000, b"k\xe9y\xff", b'{"a": 1}\n\xff\xfe not utf-8'),
        Routed("eod", 0, 7, 1, None, b'{"business_date": "2026-11-02"}', eod=True),
        Routed("customers", 1, 0, 5, b"c1", None),
        Watermarks({"balances:0": 5, "eod:1": 1700000000000}),
    ],
)
def test_routed_frames_keep_every_field_and_the_raw_bytes_exactly(frame: Frame) -> None:
    assert decode(encode(frame)) == frame


def test_routing_matches_kafkas_default_partitioner() -> None:
    # the scorer finds a customer's partition (for its table and closes) the way the
    # producer chose it when routing by key; kafka-python's murmur2 is an independent
    # port of the Java client's
    for cid in ("R000001", "C000042", "客户-7", "x" * 40):
        assert partition_of(cid, 8) == (kafka_python_murmur2(cid.encode()) & 0x7FFFFFFF) % 8


def test_a_table_value_keeps_its_outbox_through_the_changelog() -> None:
    from scoring.state import CustomerState
    from streams.outbox import Stored, decode_stored, encode_stored, has_outbox

    state = CustomerState("c1", "retail", 739000, 739001, tier="gold", sequence=7)
    value = Stored(state, [(6, b'{"event_id":"c1:6","sequence":6}'), (7, b'{"event_id":"c1:7","sequence":7}')])
    back = decode_stored(encode_stored(value))
    assert back.state == state and back.outbox == value.outbox
    assert has_outbox(encode_stored(value))
    assert decode_stored(encode_stored(Stored(state))).outbox == []
    assert not has_outbox(encode_stored(Stored(state)))


def test_a_table_value_written_in_version_1_is_read_with_its_outbox() -> None:
    from scoring.state import CustomerState
    from streams.outbox import decode_stored, has_outbox

    v1_state = (DATA / "state_v1.json").read_bytes()
    written = v1_state + b'\n6 {"event_id":"c1:6","sequence":6}'  # the version 1 layout
    back = decode_stored(written)
    assert back.state == CustomerState.from_bytes(v1_state)
    assert back.outbox == [(6, b'{"event_id":"c1:6","sequence":6}')]
    assert has_outbox(written) and not has_outbox(v1_state)


def test_the_worker_ships_fewer_batches_and_joins_faster_on_the_development_broker() -> None:
    from streams.kafka_config import consumer_options, producer_options, ship_interval

    env = {"TIERSTREAM_BROKER": "b:1", "TIERSTREAM_REDIS_URL": "r"}
    kafka, tansu = Settings.from_env(env), Settings.from_env({**env, "TIERSTREAM_BROKER_FLAVOR": "tansu"})
    assert (ship_interval(kafka), ship_interval(tansu)) == (0.005, 0.02)
    assert (consumer_options(kafka)["session_timeout_ms"], consumer_options(tansu)["session_timeout_ms"]) == (
        30_000,
        6_000,
    )
    for settings in (kafka, tansu):
        consumer = consumer_options(settings)
        assert consumer["enable_auto_commit"] is False  # offsets follow checkpoints
        assert consumer["fetch_max_wait_ms"] == 10 and consumer["group_id"] == "tierstream"
        assert producer_options(settings)["acks"] == "all"
        assert consumer["group_instance_id"] is None  # dynamic membership unless told
    static = Settings.from_env({**env, "TIERSTREAM_INSTANCE_ID": "worker-0"})
    assert consumer_options(static)["group_instance_id"] == "worker-0"
    # the outbox fault is off unless a test switches it on
    assert kafka.crash_after_outputs is None
    assert Settings.from_env({**env, "TIERSTREAM_TEST_CRASH_AFTER_OUTPUTS": "5"}).crash_after_outputs == 5


def test_routed_offsets_are_committed_up_to_the_first_record_not_applied() -> None:
    from streams.runtime import _RoutedOffsets

    offsets = _RoutedOffsets()
    for offset in range(10, 15):
        offsets.read(0, offset)
    offsets.ack((0, 10))
    offsets.ack((0, 11))
    offsets.keep((0, 12))  # an eod whose close waits
    offsets.ack((0, 13))
    assert offsets.committable() == {0: 12}
    assert offsets.committable() == {}  # nothing new
    offsets.ack((0, 12))  # the close went
    assert offsets.committable() == {0: 14}
    offsets.forget(0)
    assert offsets.committable() == {}


def test_a_worker_given_a_rules_file_that_fails_validation_stops_naming_the_field(tmp_path: Path) -> None:
    import subprocess
    import sys

    rules = tmp_path / "rules.yaml"
    text = Path("schemas/default_rules.yaml").read_text()
    rules.write_text(text.replace("allowed_lateness_days: 7", "allowed_lateness_days: 7\nallowed_future_days: 0"))
    env = {
        **os.environ,
        "TIERSTREAM_BROKER": "kafka://127.0.0.1:9",  # never reached: the rules come first
        "TIERSTREAM_REDIS_URL": "redis://127.0.0.1:9/0",
        "TIERSTREAM_RULES": str(rules),
    }
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"refused rules: {rules}: allowed_future_days: must be an integer >= 1" in done.stderr
