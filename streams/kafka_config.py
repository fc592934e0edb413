"""Settings -> the Kafka clients' options and the worker's internal topics: every knob
tierstream turns on aiokafka, and why."""

from __future__ import annotations

from typing import Any

from aiokafka.helpers import create_ssl_context

from streams.settings import Settings


def routed_topic(settings: Settings) -> str:
    """The internal repartition topic: input records by customer, eod copies, watermarks."""
    return f"{settings.topic_prefix}{settings.app_id}-routed"


def changelog_topic(settings: Settings) -> str:
    """The customer table's changelog: partition q holds the states of routed partition q's
    customers and its clock (compacted on Kafka: only the latest value of a key matters)."""
    return f"{settings.topic_prefix}{settings.app_id}-customer-state-changelog"


def _security(settings: Settings) -> dict[str, Any]:
    """The connection's security, in the option names both clients share: TLS (``SSL``,
    ``SASL_SSL``) and SASL's PLAIN or SCRAM login (``SASL_PLAINTEXT``, ``SASL_SSL``)."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password
    return options


def _tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def _tls_files(settings: Settings) -> dict[str, str | None]:
    """The CA bundle (None: the system's), and the client's certificate and key for mutual TLS."""
    return {
        "cafile": settings.kafka_ssl_cafile,
        "certfile": settings.kafka_ssl_certfile,
        "keyfile": settings.kafka_ssl_keyfile,
        "password": settings.kafka_ssl_key_password,
    }


def _client(settings: Settings) -> dict[str, Any]:
    options = {"bootstrap_servers": settings.bootstrap, "request_timeout_ms": 30_000, **_security(settings)}
    if _tls(settings):  # aiokafka takes an SSL context
        options["ssl_context"] = create_ssl_context(**_tls_files(settings))
    return options


def sync_client_options(settings: Settings) -> dict[str, Any]:
    """The same connection for kafka-python's clients (topic administration, the CLI's
    producer), which take the TLS files themselves."""
    options = {"bootstrap_servers": settings.bootstrap, **_security(settings)}
    if _tls(settings):
        options.update((f"ssl_{name}", value) for name, value in _tls_files(settings).items())
    return options


def consumer_options(settings: Settings) -> dict[str, Any]:
    """The group member that reads the inputs and the routed topic."""
    tansu = settings.broker_flavor == "tansu"
    return {
        **_client(settings),
        "group_id": settings.app_id,
        "client_id": f"{settings.app_id}-worker",
        "enable_auto_commit": False,  # offsets are committed after a checkpoint made them durable
        "auto_offset_reset": "earliest",
        # the broker answers a fetch at once when it has data; without data it waits this
        # long. Tansu holds every fetch for the whole wait even with data waiting, so a long
        # wait is latency (1.5 s measured with Faust's fixed value: p50 1.25 s end to end).
        "fetch_max_wait_ms": 10,
        "max_partition_fetch_bytes": 4 * 1024 * 1024,
        # A group join on Tansu takes about half the session timeout: keep it short there.
        "session_timeout_ms": 6_000 if tansu else 30_000,
        "heartbeat_interval_ms": 500 if tansu else 3_000,
        "rebalance_timeout_ms": 6_000 if tansu else 60_000,
        # a close of a million customers runs ~20 s between two fetches
        "max_poll_interval_ms": 300_000,
        # static membership: a worker restarted under the same id within the session timeout
        # gets its partitions back without a rebalance (a deploy, a crash); one that stops for
        # good is noticed only when its session times out (it does not leave the group)
        "group_instance_id": settings.instance_id,
    }


def producer_options(settings: Settings) -> dict[str, Any]:
    """One producer for the routed topic, the changelog and the outputs."""
    return {
        **_client(settings),
        "client_id": f"{settings.app_id}-worker",
        "acks": "all",
        # the worker builds its batches itself and hands them over closed (no linger): how
        # often it ships them is ``ship_interval``
        "linger_ms": 0,
        "max_batch_size": 512 * 1024,  # below Kafka's default message.max.bytes
        "max_request_size": 4 * 1024 * 1024,
    }


def ship_interval(settings: Settings) -> float:
    """Seconds between two shipments of the worker's record batches (each makes one batch per
    partition it touches). Tansu's time to read a partition grows with the square of its
    number of batches (README, "Development profile"): there, fewer and bigger batches."""
    return 0.02 if settings.broker_flavor == "tansu" else 0.005


def recovery_options(settings: Settings) -> dict[str, Any]:
    """A plain consumer (no group) that reads a changelog partition from its start."""
    return {
        **_client(settings),
        "client_id": f"{settings.app_id}-recovery",
        "enable_auto_commit": False,
        "fetch_max_wait_ms": 10,
        "max_partition_fetch_bytes": 8 * 1024 * 1024,
    }
