"""Topic administration against a real broker."""

from __future__ import annotations

from kafka import KafkaConsumer

from schemas import topics
from streams import kafka_admin
from streams.settings import Settings


def settings_for(broker: tuple[str, str], names: dict[str, str], flavor: str) -> Settings:
    return Settings.from_env(
        {
            "TIERSTREAM_BROKER": broker[0],
            "TIERSTREAM_REDIS_URL": "redis://unused",
            "TIERSTREAM_BROKER_FLAVOR": flavor,
            "TIERSTREAM_TOPIC_PREFIX": names["topics"],
            "TIERSTREAM_PARTITIONS": "3",
        }
    )


def test_replication_follows_the_cluster_size(broker: tuple[str, str], names: dict[str, str]) -> None:
    # a one-node cluster cannot hold three replicas, whatever its flavor
    assert kafka_admin.replication_factor(settings_for(broker, names, "kafka")) == 1


def test_topics_are_created_with_the_configured_partitions(broker: tuple[str, str], names: dict[str, str]) -> None:
    settings = settings_for(broker, names, broker[1])
    kafka_admin.ensure_topics(settings)
    kafka_admin.ensure_topics(settings)  # a second worker starting: nothing to do, no error
    every = [t.full_name(names["topics"]) for t in topics.ALL]
    assert kafka_admin.partition_counts(settings, every) == dict.fromkeys(every, 3)


def test_eod_reaches_every_partition(broker: tuple[str, str], names: dict[str, str]) -> None:
    settings = settings_for(broker, names, broker[1])
    kafka_admin.ensure_topics(settings)
    assert kafka_admin.send_eod(settings, "2026-11-02") == 3
    consumer = KafkaConsumer(
        topics.EOD.full_name(names["topics"]), bootstrap_servers=broker[0], auto_offset_reset="earliest", group_id=None
    )
    seen: set[int] = set()
    for _ in range(20):
        for tp, records in consumer.poll(timeout_ms=300).items():
            seen |= {tp.partition for r in records if b"2026-11-02" in r.value}
        if len(seen) == 3:
            break
    consumer.close()
    assert seen == {0, 1, 2}
