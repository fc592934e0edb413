"""The CRM kit (``examples/``) against a real worker's outputs: the Redis stream consumer
(a consumer group, an entry taken over from a consumer that died before acknowledging it,
redeliveries applied once, a stream trimmed by a small MAXLEN before the CRM read it) and
the Kafka consumer (exact copies on the topic applied once). Either way the CRM ends with
every customer's current tier as Redis holds it."""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis
from kafka import KafkaConsumer, KafkaProducer

from examples.crm_kafka_consumer import KafkaTierChanges
from examples.crm_redis_consumer import TierChangeConsumer
from examples.crm_store import CrmStore
from tests.integration.test_pipeline import Feeder, days_of, read_all, scenario_bank, wait_for_assignment


def current_tiers(client: redis.Redis, prefix: str) -> dict[str, tuple[str, str]]:
    out = {}
    for key in client.scan_iter(f"{prefix}customer:*"):
        h: Any = client.hgetall(key)
        out[key.decode().removeprefix(f"{prefix}customer:")] = (h[b"segment"].decode(), h[b"tier"].decode())
    return out


def test_the_crm_kit_ends_with_the_tiers_redis_holds(
    broker: tuple[str, str], redis_url: str, names: dict[str, str], start_worker: Any
) -> None:
    bootstrap, _ = broker
    maxlen = 20  # far below the changes the stream gets: a CRM down meanwhile misses entries
    worker = start_worker(4, TIERSTREAM_STREAM_MAXLEN=str(maxlen))
    wait_for_assignment([worker], 4)
    feeder = Feeder(bootstrap, names["topics"], 4, [worker])
    days = list(days_of(scenario_bank(80, 6).records()))
    for phases, eod in days[:4]:
        feeder.send_day(phases, eod)
    client = redis.Redis.from_url(redis_url)
    prefix = names["redis"]
    stream = f"{prefix}changes"

    # a CRM that starts late: the stream kept only the latest entries, it resyncs from the hashes
    first = TierChangeConsumer(client, CrmStore(), prefix, group="crm", name="crm-a", claim_idle_ms=200)
    assert client.xinfo_stream(stream)["entries-added"] > client.xlen(stream)  # trimmed
    first.start()
    assert first.missed_entries()  # it read nothing yet: the trimmed entries are missed
    assert first.store.tiers() == current_tiers(client, prefix)

    # more days; crm-a reads some entries and dies before acknowledging them
    for phases, eod in days[4:]:
        feeder.send_day(phases, eod)
    taken: Any = client.xreadgroup("crm", "crm-a", {stream: ">"}, count=5)
    assert taken and len(taken[0][1]) == 5
    second = TierChangeConsumer(client, first.store, prefix, group="crm", name="crm-b", claim_idle_ms=200)
    time.sleep(0.3)
    handled = 0
    while n := second.poll(block_ms=200):
        handled += n
    assert handled >= 5  # the five crm-a left pending, then the rest
    pending: Any = client.xpending(stream, "crm")
    assert pending["pending"] == 0
    assert second.store.tiers() == current_tiers(client, prefix)

    # every entry delivered again: nothing applied twice
    applied = second.store.applied
    client.xgroup_setid(stream, "crm", id="0")
    while second.poll(block_ms=200):
        pass
    assert second.store.applied == applied

    # the Kafka topic, with exact copies of some changes on it, as a worker's crash leaves them
    topic = f"{names['topics']}tier-changes"
    changes = read_all(bootstrap, topic)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for change in changes[:10]:
        producer.send(topic, key=change["customer_id"].encode(), value=orjson.dumps(change))
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{names['app']}-crm",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    store = CrmStore()
    kafka_crm = KafkaTierChanges(consumer, store)
    read, deadline = 0, time.monotonic() + 60
    while read < len(changes) + 10 and time.monotonic() < deadline:
        read += kafka_crm.poll(timeout_ms=500)
    consumer.close()
    assert read == len(changes) + 10
    assert store.applied == len({c["event_id"] for c in changes})
    assert store.tiers() == current_tiers(client, prefix)
