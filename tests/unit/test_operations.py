"""What the platform team touches: log lines, settings (security ones included), the Kafka
clients' connection options, secrets kept out of what is shown."""

from __future__ import annotations

import logging
import re
import ssl
from pathlib import Path
from typing import Any

import orjson
import pytest
import trustme

from streams import kafka_config, logs
from streams.settings import Settings, SettingsError

BASE = {"TIERSTREAM_BROKER": "b:1", "TIERSTREAM_REDIS_URL": "redis://r/0"}
LOGFMT_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')  # what logfmt parsers accept


def parse_logfmt(line: str) -> dict[str, str]:
    """A strict reading: the pairs must cover the whole line."""
    pairs = LOGFMT_PAIR.findall(line)
    assert " ".join(f"{k}={v}" for k, v in pairs) == line, line
    return {k: orjson.loads(v) if v.startswith('"') else v for k, v in pairs}


def record(name: str, msg: str, args: tuple[Any, ...] = (), **extra: Any) -> logging.LogRecord:
    r = logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)
    r.__dict__.update(extra)
    r.created = 1764912000.123  # 2025-12-05T05:20:00.123Z
    return r


def test_an_event_line_is_logfmt_with_an_iso_8601_timestamp() -> None:
    fields = {"partition": 3, "error": "KafkaError('the broker = away')", "path": Path("/a b"), "seconds": 1.5}
    line = logs.LogfmtFormatter().format(record("tierstream", "commit_failed", fields=fields))
    parsed = parse_logfmt(line)
    assert parsed["ts"] == "2025-12-05T05:20:00.123Z"
    assert (parsed["level"], parsed["logger"], parsed["event"]) == ("warning", "tierstream", "commit_failed")
    assert parsed["error"] == "KafkaError('the broker = away')" and parsed["path"] == "/a b"
    assert (parsed["partition"], parsed["seconds"]) == ("3", "1.500")


def test_a_librarys_free_text_line_parses_the_same_way() -> None:
    line = logs.LogfmtFormatter().format(record("aiokafka", 'Heartbeat failed for group "g": %s', ("rebalancing",)))
    parsed = parse_logfmt(line)
    assert parsed["msg"] == 'Heartbeat failed for group "g": rebalancing' and parsed["logger"] == "aiokafka"


def test_json_lines_carry_the_same_fields() -> None:
    line = logs.JsonFormatter().format(record("tierstream", "day_closed", fields={"partition": 1, "day": "2026-11-02"}))
    assert orjson.loads(line) == {
        "ts": "2025-12-05T05:20:00.123Z",
        "level": "warning",
        "logger": "tierstream",
        "pid": record("x", "y").process,
        "event": "day_closed",
        "partition": 1,
        "day": "2026-11-02",
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"TIERSTREAM_KAFKA_SECURITY_PROTOCOL": "TLS"}, "SECURITY_PROTOCOL must be one of"),
        ({"TIERSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "TIERSTREAM_KAFKA_SASL_MECHANISM is required"),
        (
            {"TIERSTREAM_KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "TIERSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"},
            "TIERSTREAM_KAFKA_SASL_USERNAME is required",
        ),
        ({"TIERSTREAM_KAFKA_SASL_MECHANISM": "GSSAPI"}, "SASL_MECHANISM must be one of"),
        ({"TIERSTREAM_KAFKA_SSL_CAFILE": "/no/such/ca.pem"}, "TIERSTREAM_KAFKA_SSL_CAFILE: no such file"),
        ({"TIERSTREAM_REDIS_CA_FILE": __file__}, "needs a rediss://"),
        ({"TIERSTREAM_LOG_FORMAT": "xml"}, "LOG_FORMAT must be one of"),
        ({"TIERSTREAM_STREAM_MAXLEN": "0"}, "STREAM_MAXLEN must be >= 1"),
    ],
)
def test_security_settings_that_cannot_work_name_the_variable(extra: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({**BASE, **extra})


def test_the_certificate_goes_with_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(SettingsError, match="CERTFILE and TIERSTREAM_KAFKA_SSL_KEYFILE go together"):
        Settings.from_env({**BASE, "TIERSTREAM_KAFKA_SSL_CERTFILE": str(cert)})


SECRETS = {
    "TIERSTREAM_REDIS_URL": "rediss://crm:url-secret-1@redis:6380/0",
    "TIERSTREAM_REDIS_PASSWORD": "redis-secret-2",
    "TIERSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "TIERSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
    "TIERSTREAM_KAFKA_SASL_USERNAME": "tierstream",
    "TIERSTREAM_KAFKA_SASL_PASSWORD": "kafka-secret-3",
}


def test_what_settings_show_masks_every_secret() -> None:
    env = {**BASE, **SECRETS}
    s = Settings.from_env(env)
    rows = {name: (value, source) for name, value, source in s.describe(env)}
    shown = repr(s) + repr(rows)
    for secret in ("url-secret-1", "redis-secret-2", "kafka-secret-3"):
        assert secret not in shown
    assert rows["TIERSTREAM_REDIS_URL"] == ("rediss://crm:***@redis:6380/0", "environment")
    assert rows["TIERSTREAM_KAFKA_SASL_PASSWORD"] == ("***", "environment")
    assert rows["TIERSTREAM_KAFKA_SASL_USERNAME"] == ("tierstream", "environment")
    assert rows["TIERSTREAM_PARTITIONS"] == ("8", "default")
    assert (s.redis_password, s.kafka_sasl_password) == ("redis-secret-2", "kafka-secret-3")  # only masked when shown


def test_both_kafka_clients_get_the_same_tls_and_sasl_connection(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    env = {
        **BASE,
        **SECRETS,
        "TIERSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "TIERSTREAM_KAFKA_SSL_CAFILE": str(tmp_path / "ca.pem"),
    }
    s = Settings.from_env(env)
    sasl = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "tierstream",
        "sasl_plain_password": "kafka-secret-3",
    }
    aiokafka_clients = (kafka_config.consumer_options, kafka_config.producer_options, kafka_config.recovery_options)
    for options in (client(s) for client in aiokafka_clients):
        assert sasl.items() <= options.items()
        context = options["ssl_context"]
        assert isinstance(context, ssl.SSLContext) and context.verify_mode is ssl.CERT_REQUIRED
        assert context.get_ca_certs()  # the given CA, loaded
    sync = kafka_config.sync_client_options(s)
    assert sasl.items() <= sync.items() and sync["ssl_cafile"] == str(tmp_path / "ca.pem")


def test_plaintext_clients_get_no_login_and_no_tls() -> None:
    s = Settings.from_env(BASE)
    for options in (kafka_config.consumer_options(s), kafka_config.sync_client_options(s)):
        assert options["security_protocol"] == "PLAINTEXT"
        assert not any(k.startswith(("sasl", "ssl")) for k in options)
