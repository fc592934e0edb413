"""Topic creation, partition counts and a plain producer, with kafka-python."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from schemas import topics
from streams.kafka_config import changelog_topic, routed_topic, sync_client_options
from streams.settings import Settings


def _admin(settings: Settings, timeout: float = 30.0) -> KafkaAdminClient:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return KafkaAdminClient(**sync_client_options(settings), client_id="tierstream-admin")
        except KafkaConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def replication_factor(settings: Settings) -> int:
    """3 where the cluster has three brokers or more, else as many as it has (Tansu: 1)."""
    if settings.broker_flavor == "tansu":
        return 1
    consumer = KafkaConsumer(**sync_client_options(settings), client_id="tierstream-meta")
    try:
        consumer.topics()  # fetches cluster metadata
        brokers = len(consumer._client.cluster.brokers())  # kafka-python has no public call for it
    finally:
        consumer.close()
    return max(1, min(3, brokers))


def ensure_topics(settings: Settings, internal: bool = False) -> None:
    """Create the input and output topics (and, for a worker, its internal ones) with the
    configured partitions.

    Explicitly: a producer writing to a missing topic would auto-create it with whatever
    partition count the broker likes (measured). The changelog is compacted: only the
    latest value of each customer is needed to recover."""
    names = [t.full_name(settings.topic_prefix) for t in topics.ALL]
    configs: dict[str, dict[str, str]] = {}
    if internal:
        names.append(routed_topic(settings))
        names.append(changelog_topic(settings))
        configs[changelog_topic(settings)] = {"cleanup.policy": "compact"}
    admin = _admin(settings)
    try:
        existing = set(admin.list_topics())
        replication = replication_factor(settings)
        missing = [
            NewTopic(n, settings.partitions, replication, topic_configs=configs.get(n, {}))
            for n in names
            if n not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was quicker
                admin.create_topics(missing)
    finally:
        admin.close()


def partition_counts(settings: Settings, names: Iterable[str]) -> dict[str, int]:
    consumer = KafkaConsumer(**sync_client_options(settings), client_id="tierstream-meta")
    try:
        counts: dict[str, int] = {}
        for name in names:
            deadline = time.monotonic() + 30
            parts = consumer.partitions_for_topic(name)
            while not parts:
                if time.monotonic() > deadline:
                    raise KafkaError(f"topic {name} has no partitions")
                time.sleep(0.2)
                parts = consumer.partitions_for_topic(name)
            counts[name] = len(parts)
        return counts
    finally:
        consumer.close()


def producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(**sync_client_options(settings), linger_ms=5, acks="all", client_id="tierstream-cli")


def send_eod(settings: Settings, business_date: str, timestamp_ms: int | None = None) -> int:
    """Send the close of ``business_date`` to every partition of the eod topic."""
    name = topics.EOD.full_name(settings.topic_prefix)
    count = partition_counts(settings, [name])[name]
    prod = producer(settings)
    try:
        value = ("{" + f'"event_id":"eod-{business_date}","business_date":"{business_date}"' + "}").encode()
        for p in range(count):
            prod.send(name, value=value, partition=p, timestamp_ms=timestamp_ms)
        prod.flush()
    finally:
        prod.close()
    return count
