"""The shell's pure pieces: settings from an environment, routed-record framing, routing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from streams.frames import Frame, Routed, Watermarks, decode, encode
from streams.routing import partition_of
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
    from faust.serializers import codecs

    from scoring.state import CustomerState
    from streams.outbox import Stored, register_codec

    register_codec()
    state = CustomerState("c1", "retail", 739000, 739001, tier="gold", sequence=7)
    value = Stored(state, [(6, b'{"event_id":"c1:6","sequence":6}'), (7, b'{"event_id":"c1:7","sequence":7}')])
    codec = codecs.get_codec("tierstate")
    back = codec.loads(codec.dumps(value))
    assert back.state == state and back.outbox == value.outbox
    assert Stored.from_data(back) is back  # Faust's rebuild hook returns what the codec built
    assert codec.loads(codec.dumps(Stored(state))).outbox == []


def test_the_faust_patches_refuse_a_faust_they_were_not_written_for() -> None:
    from streams import faust_patches

    faust_patches.check_version()  # the installed one
    faust_patches.check_version("0.15.9")
    with pytest.raises(RuntimeError, match=r"written for faust-streaming 0\.15, not 0\.16\.0"):
        faust_patches.check_version("0.16.0")


def test_faust_gets_bigger_batches_and_no_standbys_on_the_development_broker(tmp_path: Path) -> None:
    from streams.faust_config import faust_options

    env = {"TIERSTREAM_BROKER": "b:1", "TIERSTREAM_REDIS_URL": "r", "TIERSTREAM_DATA_DIR": str(tmp_path)}
    kafka = faust_options(Settings.from_env(env), replication=3)
    tansu = faust_options(Settings.from_env({**env, "TIERSTREAM_BROKER_FLAVOR": "tansu"}), replication=1)
    assert (kafka["producer_linger"], kafka["table_standby_replicas"], kafka["topic_replication_factor"]) == (
        0.005,
        1,
        3,
    )
    assert (tansu["producer_linger"], tansu["table_standby_replicas"]) == (0.05, 0)
    assert kafka["web_port"] == 6066 and kafka["datadir"] == str(tmp_path / "worker")
