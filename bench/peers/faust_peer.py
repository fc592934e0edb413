"""A plain Faust agent with defaults running the peers' job: a table of sums, one changelog
record per update, ``await topic.send`` per tier change.

    python bench/peers/faust_peer.py BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC EXPECT RESULT_FILE DATA_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import faust
from faust.worker import Worker

from bench.peers.job import Progress, amount, rung
from streams.web import free_port


def main() -> None:
    bootstrap, source, sink, expect, result, data_dir = sys.argv[1:7]
    progress = Progress(Path(result), int(expect))
    app = faust.App(
        f"faust-{source}", broker=f"kafka://{bootstrap}", store="memory://", datadir=data_dir, web_port=free_port()
    )
    inputs = app.topic(source, value_serializer="json")
    outputs = app.topic(sink, value_serializer="json")
    sums = app.Table("sums", default=float)
    tiers = app.Table("tiers", default=int)

    @app.agent(inputs)
    async def score(stream: Any) -> None:
        async for value in stream:
            cid = value["customer_id"]
            total = sums[cid] + amount(value)
            sums[cid] = total
            tier = rung(total)
            if tier != tiers[cid]:
                tiers[cid] = tier
                await outputs.send(key=cid, value={"customer_id": cid, "tier": tier})
            progress.tick()

    sys.argv = [sys.argv[0], "worker", "--loglevel", "WARNING"]
    Worker(app, loglevel="WARNING").execute_from_commandline()


if __name__ == "__main__":
    main()
