"""``tierstream worker``: one Faust worker with the configuration of the environment."""

from __future__ import annotations

import logging
import os

from faust.worker import Worker

from schemas import topics
from schemas.rules import load_rules
from streams.app import Pipeline
from streams.kafka_admin import ensure_topics, partition_counts, replication_factor
from streams.settings import Settings
from streams.sinks import RedisTierSink


def build(settings: Settings) -> Pipeline:
    rules = load_rules(settings.rules_path)
    ensure_topics(settings)
    inputs = [t.full_name(settings.topic_prefix) for t in topics.INPUTS]
    sink = RedisTierSink(settings.redis_url, settings.redis_prefix)
    return Pipeline(settings, rules, sink, partition_counts(settings, inputs), replication_factor(settings))


def run(settings: Settings | None = None, loglevel: str = "INFO") -> None:
    settings = settings or Settings.from_env(os.environ)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    pipeline = build(settings)
    logging.basicConfig(level=loglevel, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    Worker(pipeline.app, loglevel=loglevel).execute_from_commandline()
