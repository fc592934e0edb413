"""``tierstream worker``: one Faust worker with the configuration of the environment."""

from __future__ import annotations

import os

from faust.worker import Worker

from schemas import topics
from streams import faust_patches
from streams.app import Pipeline
from streams.kafka_admin import ensure_topics, partition_counts, replication_factor
from streams.outbox import register_codec
from streams.rules_file import load_rules
from streams.settings import Settings
from streams.sinks import RedisTierSink


def build(settings: Settings) -> Pipeline:
    """The worker: Faust patched (process-wide, once), topics ensured, the topology wired."""
    faust_patches.install(settings.bootstrap if settings.broker_flavor == "tansu" else None)
    register_codec()
    rules = load_rules(settings.rules_path)
    ensure_topics(settings)
    inputs = [t.full_name(settings.topic_prefix) for t in topics.INPUTS]
    sink = RedisTierSink(settings.redis_url, settings.redis_prefix)
    return Pipeline(settings, rules, sink, partition_counts(settings, inputs), replication_factor(settings))


def logging_config(loglevel: str) -> dict[str, object]:
    """key=value log lines, one event per line, for log shippers and grep alike."""
    line = "ts=%(asctime)s level=%(levelname)s logger=%(name)s pid=%(process)d %(message)s"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"kv": {"format": line}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "kv"}},
        "root": {"level": loglevel.upper(), "handlers": ["stderr"]},
    }


def run(settings: Settings | None = None, loglevel: str = "INFO") -> None:
    settings = settings or Settings.from_env(os.environ)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    pipeline = build(settings)
    Worker(pipeline.app, loglevel=loglevel, logging_config=logging_config(loglevel)).execute_from_commandline()
