"""The worker's web server: its pages (``/health``, ``/counters``) and its port."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.app import Pipeline


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def add_pages(pipeline: Pipeline) -> None:
    # Faust binds page functions to its View: plain functions, not bound methods
    pipeline.app.page("/health")(lambda view, request: health(pipeline, view))
    pipeline.app.page("/counters")(lambda view, request: counters(pipeline, view))


async def health(pipeline: Pipeline, web: Any) -> Any:
    body = {"status": "ok", "app_id": pipeline.settings.app_id, "rules_version": pipeline.rules.version}
    return web.json(body)


async def counters(pipeline: Pipeline, web: Any) -> Any:
    consumer: Any = pipeline.app.consumer
    router, scorer = pipeline.router, pipeline.scorer
    lag: dict[str, int] = {}
    for tp in consumer.assignment():
        source = f"{tp.topic}:{tp.partition}"
        try:
            high = consumer.highwater(tp)
        except Exception:
            continue
        if high is not None and tp.topic in router.inputs:
            lag[source] = max(0, high - router.next_offset.get(source, high))
    routed = pipeline.routed.get_topic_name()
    body = scorer.core.counters.as_dict()
    body["consumer_lag"] = lag
    body["held"] = scorer.held()
    body["routed_partitions"] = sorted(tp.partition for tp in consumer.assignment() if tp.topic == routed)
    body["pending_closes"] = sum(len(p.gate.waiting) for p in scorer.partitions.values())
    body["closes_waiting"] = scorer.closes_waiting()
    return web.json(body)
