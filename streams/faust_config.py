"""Settings -> the keyword arguments of ``faust.App``: every Faust knob tierstream turns, and why."""

from __future__ import annotations

from typing import Any

from streams.settings import Settings
from streams.web import free_port


def faust_options(settings: Settings, replication: int) -> dict[str, Any]:
    tansu = settings.broker_flavor == "tansu"
    return {
        "broker": settings.broker,
        "store": "memory://",
        "topic_partitions": settings.partitions,
        "topic_replication_factor": replication,
        "web_port": settings.web_port or free_port(),  # 0: any free port (Faust announces a number)
        "datadir": str(settings.data_dir / "worker"),
        "consumer_auto_offset_reset": "earliest",
        # Tansu's time to read a partition grows with the square of its number of batches
        # (README, "Development profile"): there, wait longer to batch more.
        "producer_linger": 0.05 if tansu else 0.005,
        "producer_max_batch_size": 512 * 1024,  # below Kafka's default message.max.bytes
        # A standby re-reads every changelog record as it is written: on Tansu that is the
        # quadratic read above, for every table write of the other workers.
        "table_standby_replicas": 0 if tansu else 1,
        # Not producer_max_batch_size=1, the other cure for Tansu's too-small end offsets in
        # table recovery: it made every send its own request and the worker ~20x slower.
        # ``faust_patches`` reads past the reported end instead.
        "broker_session_timeout": 6 if tansu else 30,
        "broker_heartbeat_interval": 0.5 if tansu else 3,
        "broker_rebalance_timeout": 6 if tansu else 60,
        "broker_request_timeout": 30,
    }
