"""The worker's web server (aiohttp): ``/health`` and ``/counters``, and a free port finder."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from streams.runtime import Runtime


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def serve(runtime: Runtime, port: int) -> web.AppRunner:
    """Start the pages on ``port`` (all interfaces); the caller cleans the runner up."""
    app = web.Application()
    app.router.add_get("/health", lambda request: health(runtime))
    app.router.add_get("/counters", lambda request: counters(runtime))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, port=port).start()
    return runner


async def health(runtime: Runtime) -> web.Response:
    body = {"status": "ok", "app_id": runtime.settings.app_id, "rules_version": runtime.rules.version}
    return web.json_response(body)


async def counters(runtime: Runtime) -> web.Response:
    scorer = runtime.scorer
    body: dict[str, Any] = scorer.core.counters.as_dict()
    body["consumer_lag"] = runtime.lag()
    body["held"] = scorer.held()
    body["held_peak"] = runtime.held_peak
    body["paused"] = sorted(f"{tp.topic}:{tp.partition}" for tp in runtime.paused)
    body["routed_partitions"] = runtime.routed_partitions()
    body["pending_closes"] = sum(len(p.gate.waiting) for p in scorer.partitions.values())
    body["closes_waiting"] = scorer.closes_waiting()
    body["close_seconds"] = round(scorer.close_seconds, 3)
    body["records_after_their_close"] = scorer.after_their_close
    return web.json_response(body)
