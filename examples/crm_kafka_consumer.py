"""How a CRM consumes tierstream's tier changes from the Kafka topic, correctly.

tierstream delivers at least once: after a worker's crash an output may be on the topic
twice, as an exact copy (same ``event_id``, same content). The CRM applies each change
and remembers its ``event_id`` in one transaction (``CrmStore``), then commits the
offsets: a crash before the commit redelivers changes that the store then skips. A
customer's changes are in order on its partition (keyed by customer id).

Run: ``python -m examples.crm_kafka_consumer --bootstrap localhost:9092``.
"""

from __future__ import annotations

import json

from kafka import KafkaConsumer

from examples.crm_store import CrmStore, arguments


class KafkaTierChanges:
    def __init__(self, consumer: KafkaConsumer, store: CrmStore) -> None:
        """``consumer``: subscribed to the tier-changes topic, in the CRM's group, auto-commit off."""
        self.consumer = consumer
        self.store = store

    def poll(self, timeout_ms: int = 1000) -> int:
        """Apply what arrived (each change once), then commit; how many records were read."""
        read = 0
        for records in self.consumer.poll(timeout_ms=timeout_ms).values():
            for record in records:
                self.store.apply(json.loads(record.value))
                read += 1
        if read:
            self.consumer.commit()  # after the store's commits: a crash in between redelivers, skipped
        return read


def main() -> None:
    args = arguments(__doc__, bootstrap="127.0.0.1:9092", topic="tier-changes", group="crm")
    consumer = KafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,  # committed after the store's commit (``poll``)
        auto_offset_reset="earliest",  # a new CRM reads the topic from its start
    )
    changes = KafkaTierChanges(consumer, CrmStore(args.db))
    while True:
        changes.poll()


if __name__ == "__main__":
    main()
