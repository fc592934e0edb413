"""The worker's web server (aiohttp), and a free port finder.

``/health``: the process answers (liveness). ``/ready``: it does its share (readiness,
``streams.monitoring``): 200, or 503 naming the check that fails. ``/metrics``: Prometheus'
text format. ``/counters``: the same figures as JSON, for people and tests. Nothing else:
no page serves a customer's state, the tables or the group's members.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from streams.monitoring import Monitoring, readiness

if TYPE_CHECKING:
    from streams.runtime import Runtime


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def serve(runtime: Runtime, monitoring: Monitoring, host: str, port: int) -> web.AppRunner:
    """Start the pages on ``host``:``port``; the caller cleans the runner up."""
    app = web.Application()
    app.router.add_get("/health", lambda request: health(runtime))
    app.router.add_get("/ready", lambda request: ready(runtime))
    app.router.add_get("/metrics", lambda request: metrics(runtime, monitoring))
    app.router.add_get("/counters", lambda request: counters(runtime))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host=host, port=port).start()
    return runner


async def health(runtime: Runtime) -> web.Response:
    body = {"status": "ok", "app_id": runtime.settings.app_id, "rules_version": runtime.rules.version}
    return web.json_response(body)


async def ready(runtime: Runtime) -> web.Response:
    ok, body = await readiness(runtime)
    return web.json_response(body, status=200 if ok else 503)


async def metrics(runtime: Runtime, monitoring: Monitoring) -> web.Response:
    body = await monitoring.metrics(runtime)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def counters(runtime: Runtime) -> web.Response:
    scorer = runtime.scorer
    body: dict[str, Any] = scorer.core.counters.as_dict()
    body["consumer_lag"] = runtime.lag()
    body["held"] = scorer.held()
    body["held_peak"] = runtime.held_peak
    body["paused"] = sorted(f"{tp.topic}:{tp.partition}" for tp in runtime.paused)
    body["routed_partitions"] = runtime.routed_partitions()
    body["pending_closes"] = scorer.pending_closes()
    body["closes_waiting"] = scorer.closes_waiting()
    body["close_seconds"] = round(scorer.close_seconds, 3)
    body["records_after_their_close"] = scorer.after_their_close
    return web.json_response(body)
